"""A bank of one-sided Gaussian CUSUMs, vectorised over features.

Column ``c`` of the bank watches statistic ``stat[c]`` (an index into the
statistics handed to :meth:`CusumBank.increments`) in direction ``sign[c]``
(+1: upward, -1: downward) with allowance ``k[c]``:
``S = max(0, S + sign * y - k)``, where ``y`` is N(0, 1) on a stream without
change.  Column thresholds come from
:func:`models.calibration.gaussian_cusum_threshold` for each feature's
reference size.  Increments for a whole batch are computed at once; the
recursion itself runs one event at a time (``step``), identically for
``update`` and ``update_many``.
"""

from __future__ import annotations

import numpy as np

from models.calibration import gaussian_cusum_threshold
from models.drift._reference import floor_2sig

__all__ = ["CusumBank"]


class CusumBank:
    """One-sided CUSUMs ``(stat, sign, k)`` for ``F`` features."""

    def __init__(
        self, columns: list[tuple[int, int, float]], rate: float, n_ref: np.ndarray, enabled: np.ndarray
    ) -> None:
        self.columns = columns
        self._stat = np.array([c[0] for c in columns])
        self._sign = np.array([c[1] for c in columns], dtype=float)
        self._k = np.array([c[2] for c in columns], dtype=float)
        n_features = len(n_ref)
        self.h = np.full((n_features, len(columns)), np.inf)
        for f in np.flatnonzero(enabled):
            n = floor_2sig(float(n_ref[f]))
            self.h[f] = [gaussian_cusum_threshold(float(k), rate, n) for k in self._k]
        self.s = np.zeros_like(self.h)

    def increments(self, stats: list[np.ndarray], ok: np.ndarray) -> np.ndarray:
        """Per-event increments ``(T, F, C)``; zero where the value is missing."""
        inc = np.stack(stats, axis=-1)[..., self._stat]
        inc *= self._sign
        inc -= self._k
        inc *= ok[..., None]
        return inc

    def step(self, inc: np.ndarray) -> bool:
        """Add one event's increments ``(F, C)``; True if any column reached its threshold."""
        s = self.s
        s += inc
        np.maximum(s, 0.0, out=s)
        return bool((s >= self.h).any())

    def ratios(self) -> np.ndarray:
        """Statistic over threshold, ``(F, C)`` (0 where disabled)."""
        return np.where(np.isinf(self.h), 0.0, self.s / self.h)

    def clear(self, rows: np.ndarray | slice = slice(None)) -> None:
        self.s[rows] = 0.0

    def labels(self, names: list[str]) -> list[str]:
        side = {1: "up", -1: "down"}
        return [f"{names[i]}_{side[s]}(k={k:g})" for i, s, k in self.columns]
