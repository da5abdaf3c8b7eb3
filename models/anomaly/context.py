"""Seasonal context for a univariate stream: period detection and the seasonal residual.

A stream with a daily (or any) cycle makes its regular highs look like level
shifts to a detector that compares each value with a sliding window of recent
values.  :class:`SeasonalContext` keeps the last ``history`` values, looks for a
period with the sample autocorrelation (after 512 values, then each time the
count doubles, then every ``history // 2`` events), and, while a
period ``P`` holds, gives the *seasonal residual*
``y_t - median(y_t-P, y_t-2P, y_t-3P)``: the value compared with the values at
the same phase of the previous cycles.  Once the values kept hold
:data:`MANY_PERIODS` cycles (a short one), the median is taken over that many: a
baseline with a fifth of the noise, which a level shift moves only after half of
them (with three, the shift shows in the residual for about two cycles, and a small
one was missed: at 0.87 standard deviations in a cycle of 288, 19 times in 20).
The period is the local maximum of the autocorrelation with the largest
*prominence* (its height above the lowest autocorrelation at shorter lags, so the
slow decay of a merely autocorrelated series does not count), accepted when that
is at least ``min_prominence``.  On independent values (a latency stream) the
autocorrelation is about ``1 / sqrt(n)`` and the prominence stays near 0.1, so no
period is found there.

A stream that is merely autocorrelated (latency wandering with load) has a
sample autocorrelation that wanders far more at long lags (Bartlett: variance
``(1 + r^2) / ((1 - r^2) n)`` for an AR(1) with coefficient ``r``), enough for
a spurious prominent peak: on AR(1) with coefficient 0.97, 2,000 values, one
window in six.  So a peak must also reach ``significance`` standard errors of
that wander, with ``r`` the lag-1 autocorrelation of the stream differenced at
the candidate lag (what is left once the period is taken out: the noise around
a real cycle, nearly the whole stream for a spurious one).

Periods longer than a third of ``history`` are looked for in the medians of blocks
of ``block`` values (see :class:`SeasonalContext`): a day of a slow model's requests
is too long for the values themselves to show.

The lag of the peak is then refined (:func:`_refine`): it is the lag at which the
values differ least from themselves, over the period's first multiples that fit.
The peak alone is placed short of a long period (at 1,440 in 6,000 values, 6 to
12 lags short), and a residual compared with the wrong phase rises and falls
with the cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from models.anomaly.ring import Ring

__all__ = ["MANY_PERIODS", "SeasonalContext", "find_period", "median_of_few"]

#: Cycles a short period's residual is taken against once the values kept hold that many.
MANY_PERIODS = 15


def find_period(
    y: np.ndarray, min_period: int, min_prominence: float, significance: float = 4.5, refine: bool = True, cycles: int = 3
) -> int | None:
    """Lag of the most prominent local maximum of the autocorrelation of ``y`` that reaches
    ``min_prominence`` and ``significance`` standard errors (:func:`_wander`), if any.

    Lags from ``min_period`` to ``len(y) // cycles`` are searched (``cycles`` cycles at least).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(1500)
    >>> find_period(np.sin(2 * np.pi * t / 100) + 0.3 * rng.normal(size=1500), 8, 0.3) in (99, 100, 101)
    True
    >>> find_period(rng.normal(size=1500), 8, 0.3) is None
    True
    >>> e, ar = np.random.default_rng(2).normal(size=2000), np.zeros(2000)
    >>> for t in range(1, 2000):
    ...     ar[t] = 0.97 * ar[t - 1] + e[t]
    >>> find_period(ar, 16, 0.4, significance=0.0), find_period(ar, 16, 0.4)  # a wander, not a cycle
    (662, None)
    """
    n = len(y)
    max_lag = n // cycles
    if max_lag <= min_period + 1:
        return None
    z = np.asarray(y, dtype=float) - float(np.mean(y))
    var = float(np.dot(z, z))
    if var <= 0.0:
        return None
    spec = np.fft.rfft(z, 2 * n)
    acf = np.fft.irfft(spec * np.conj(spec))[: max_lag + 2] / var
    lags = np.arange(min_period, max_lag + 1)
    prominence = acf[lags] - np.minimum.accumulate(acf)[lags]
    peak = (acf[lags] >= acf[lags - 1]) & (acf[lags] >= acf[lags + 1]) & (prominence >= min_prominence)
    for lag in lags[peak][np.argsort(-prominence[peak], kind="stable")]:
        if acf[lag] >= significance * _wander(z, int(lag)):
            return _refine(z, acf * var, int(lag), min_period, max_lag) if refine else int(lag)
    return None


def _refine(z: np.ndarray, cross: np.ndarray, lag: int, min_period: int, max_lag: int) -> int:
    """The lag within a tenth of ``lag`` at whose first multiples ``z`` differs least from itself
    (mean squared difference ``D(L)`` of the values ``L`` apart), ``cross[L]`` being the sum of
    ``z_t z_t+L``.

    The seasonal residual compares a value with those a period before, so the period is
    the lag that makes that difference smallest.  The autocorrelation peak :func:`find_period`
    finds is placed less well: its sum of ``n - lag`` pairs over ``n`` tilts a cycle's peak
    towards shorter lags (by about ``P^2 / (4 pi^2 (n - P))``: 8 of 1,440 with ``n`` 8,000),
    and the window's mean, off zero over a fractional number of cycles, moves it by more;
    ``D`` has neither bias.  Every multiple of the period is a minimum too, with noise of its
    own, so where several fit the comb of multiples places the period more precisely still.
    """
    n = len(z)
    lo, hi = max(min_period, lag - lag // 10), min(max_lag, lag + lag // 10)
    multiples = max(1, max_lag // hi)
    lags = np.outer(np.arange(lo, hi + 1), np.arange(1, multiples + 1))
    sq = np.concatenate(([0.0], np.cumsum(z * z)))
    # sum over t < n - L of z_t^2 plus sum over t >= L of z_t^2, minus twice the cross sum
    diff = sq[n - lags] + (sq[n] - sq[lags]) - 2.0 * cross[lags]
    return int(lo + np.argmin((diff / (n - lags)).mean(axis=1)))


def _wander(z: np.ndarray, lag: int) -> float:
    """Standard error of the sample autocorrelation of ``z`` at ``lag`` if ``z`` were an AR(1)
    whose coefficient is the lag-1 autocorrelation of ``z`` differenced at ``lag`` (Bartlett)."""
    d = z[lag:] - z[:-lag]
    d = d - d.mean()
    var = float(np.dot(d, d))
    r = min(max(float(np.dot(d[1:], d[:-1])) / var, 0.0), 0.999) if var > 0.0 else 0.0
    return math.sqrt((1.0 + r * r) / ((1.0 - r * r) * len(z)))


def median_of_few(values: list[float]) -> float:
    """The median of a few values (a sort is cheaper than numpy's call at 15)."""
    ordered, mid = sorted(values), len(values) // 2
    return ordered[mid] if len(values) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


class SeasonalContext:
    """Last ``history`` values, the detected period, and the seasonal residual.

    With ``block`` above 1 it also keeps the medians of the last ``history // 2`` blocks of
    ``block`` values, and where the values show no period up to ``history // 3`` it looks for
    one from ``long_from`` values up in those medians (up to ``history // 4 * block`` values: a
    day of a request every few seconds).  Two cycles of block medians suffice (their noise is
    about a third of the values'; three, as for the values, left a long cycle's third day
    reading as a level shift).  While such a long period holds, the residual is the value
    minus the median of the medians of the blocks one, two and three periods before the
    current block (the phase to within a block), or the mean of the two while only two
    periods are kept.

    Parameters
    ----------
    history
        Values kept (and used for the autocorrelation); the longest period found is ``history // 3``.
    min_period
        Shortest period considered (shorter lags are just autocorrelated noise).
    min_prominence
        Prominence needed at the period's lag (autocorrelation minus its minimum at shorter lags).
    block
        Values per block median for periods longer than ``history // 3`` (``0``: none looked for).
    long_from
        Shortest period looked for in the block medians (default ``history // 3``).

    Examples
    --------
    >>> import numpy as np
    >>> ctx = SeasonalContext(history=1200, min_period=16, min_prominence=0.5)
    >>> t = np.arange(1300)
    >>> res = [ctx.add(v) for v in 10.0 + np.sin(2 * np.pi * t / 50)]
    >>> ctx.period, res[0] is None, bool(abs(res[-1]) < 1e-9)
    (50, True, True)
    >>> long = SeasonalContext(history=600, min_period=16, min_prominence=0.5, block=8)
    >>> t = np.arange(4000)
    >>> res = [long.add(v) for v in 10.0 + np.sin(2 * np.pi * t / 400)]
    >>> long.period, bool(abs(res[-1]) < 0.1)
    (400, True)
    """

    def __init__(
        self, history: int = 2048, min_period: int = 16, min_prominence: float = 0.5, block: int = 0, long_from: int | None = None
    ) -> None:
        self.history, self.min_period, self.min_prominence, self.block = history, min_period, min_prominence, block
        self.long_from = history // 3 if long_from is None else long_from
        self.many_periods = MANY_PERIODS
        self._values = Ring(history)
        self._blocks = Ring(history // 2) if block > 1 else None  # medians of whole blocks of ``block`` values
        self._pending: list[float] = []  # the current block's values so far
        self._refine = True  # the period placed by the comb of its multiples (see _refine)
        self._n = 0
        # Fewer than 512 values give spurious peaks on independent data (at 64 values, a
        # quarter of the time; at 512, none in 2000 trials).
        self._next_check = max(4 * min_period, min(512, history))
        self.period: int | None = None
        self._in_blocks = False  # the period was found in the block medians (a multiple of ``block``)

    def add(self, y: float) -> float | None:
        """Add ``y``; return its seasonal residual, or ``None`` while no period holds."""
        self._n += 1
        res = None
        p = self.period
        if p is not None:
            ring, lag = (self._blocks, p // self.block) if self._in_blocks else (self._values, p)
            back = self._cycles_back(len(ring) // lag) if ring is not None else 0
            if back:
                res = y - median_of_few([ring.ago(j * lag) for j in range(1, back + 1)])
        self._values.append(y)
        if self._blocks is not None:
            self._pending.append(y)
            if len(self._pending) == self.block:
                self._blocks.append(median_of_few(self._pending))
                self._pending.clear()
        if self._n >= self._next_check:
            self._next_check = self._n + min(self.history // 2, self._n)
            self._look_for_period()
        return res

    def _cycles_back(self, kept: int) -> int:
        """Cycles the residual's baseline spans, with ``kept`` whole cycles in the values (or block
        medians): ``many_periods`` for a short period once that many are kept, else three, or two for a
        long period seen twice so far; 0 while too few are kept for a residual."""
        if not self._in_blocks and kept >= self.many_periods:
            return self.many_periods
        if kept >= 3:
            return 3
        return 2 if self._in_blocks and kept >= 2 else 0

    def _look_for_period(self) -> None:
        self._in_blocks = False
        self.period = find_period(self._values.values(), self.min_period, self.min_prominence, refine=self._refine)
        if self.period is None and self._blocks is not None:
            shortest = max(self.min_period, self.long_from // self.block)
            found = find_period(self._blocks.values(), shortest, self.min_prominence, refine=self._refine, cycles=2)
            if found is not None:
                self.period, self._in_blocks = found * self.block, True

    def look_again(self) -> None:
        """Look for the period now, in the values as they are kept (after a :meth:`remap`)."""
        self._look_for_period()

    @property
    def long(self) -> bool:
        """Whether the period was found in the block medians (longer than the values show)."""
        return self._in_blocks

    def remap(self, f: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace every value kept by ``f`` of it (``f`` monotone, elementwise: the period holds)."""
        self._values.remap(f)
        if self._blocks is not None:
            self._blocks.remap(f)  # the median of mapped values is the mapped median (blocks of odd size exactly)
            self._pending = f(np.asarray(self._pending)).tolist()

    def values(self) -> np.ndarray:
        """The values kept, oldest first."""
        return self._values.values()

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "_y" in state:  # a snapshot from before the block medians: its values, oldest first (a deque, or an array)
            for key in ("_len", "_end"):
                state.pop(key, None)
            state["_values"] = Ring(state["history"], state.pop("_y"))
        state.setdefault("block", 0)
        state.setdefault("long_from", state["history"] // 3)
        state.setdefault("_blocks", None)
        state.setdefault("_pending", [])
        state.setdefault("_in_blocks", False)
        state.setdefault("_refine", False)  # before the comb: the autocorrelation's peak, as it was
        state.setdefault("many_periods", 3)  # before the median over many cycles: three, as it was
        self.__dict__.update(state)
