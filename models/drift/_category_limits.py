"""The limits CategoricalDrift tests a window's counts against, and its default window lengths."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["DEFAULT_WINDOWS", "MIN_EXPECTED", "binomial_critical", "count_limits", "own_bins", "tested_bins", "windows_for"]

#: Window lengths by default: short ones catch a large shift within a few hundred values, long ones a small one.
DEFAULT_WINDOWS = (100, 200, 400, 800, 1600)
#: Least expected values in a window for a category to get a bin of its own there.
MIN_EXPECTED = 5.0


def windows_for(warmup: int) -> tuple[int, ...]:
    """The default windows that fit in a warm-up of ``warmup`` values (the warm-up itself if none does)."""
    return tuple(w for w in DEFAULT_WINDOWS if w <= warmup) or (warmup,)


def own_bins(counts: list[int], n_ref: int, window: int) -> int:
    """How many of the most frequent categories (``counts``, descending) expect at least
    ``MIN_EXPECTED`` values in a window of ``window`` values."""
    return sum(1 for k in counts if k * window / n_ref >= MIN_EXPECTED)


def tested_bins(ref: list[int]) -> list[int]:
    """Which of a window's bins (reference counts ``ref``: its own categories, most frequent first, then
    the rest) its count tests watch: not the rest when the reference had none of it (only unseen
    categories land there, which the unseen count watches), and of two bins only the second, the
    rarer (the other is the window minus it)."""
    bins = list(range(len(ref) - (ref[-1] == 0)))
    return bins[1:] if len(bins) == 2 else (bins if len(bins) > 2 else [])


def count_limits(window: int, ref: int, n_ref: int, level: float) -> tuple[int, int]:
    """Counts beyond which a bin holding ``ref`` of ``n_ref`` reference values is surprising in a window:
    ``(lo, hi)`` with ``P(X <= lo)`` and ``P(X >= hi)`` at most ``level`` for ``X`` the window's count
    under exchangeability (beta-binomial: the reference share is itself estimated); ``lo = -1`` and
    ``hi = window + 1`` where no count is that rare."""
    pmf = stats.betabinom.pmf(np.arange(window + 1), window, ref + 0.5, n_ref - ref + 0.5)
    below = np.cumsum(pmf)
    above = np.cumsum(pmf[::-1])[::-1]
    lows, highs = np.flatnonzero(below <= level), np.flatnonzero(above <= level)
    return (int(lows[-1]) if lows.size else -1), (int(highs[0]) if highs.size else window + 1)


def binomial_critical(n: int, q: float, level: float) -> int:
    """Least ``u`` with ``P(Binomial(n, q) >= u) <= level``."""
    u = max(int(stats.binom.isf(level, n, q)), 0)
    while stats.binom.sf(u, n, q) > level:
        u += 1
    return u + 1
