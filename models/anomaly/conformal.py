"""Sliding-window conformal p-values with exponential tail extrapolation.

A ``ConformalReference`` keeps the last ``window`` values of a stream, sorted.
The p-value of a new value is its conformal rank among them (ties broken by a
uniform draw, so it is exactly uniform when the stream is exchangeable, for
any distribution, heavy tails included).  Beyond the window's extremes the
rank is extrapolated with an exponential tail whose scale is the mean excess of
the ``tail`` most extreme values over the next one (peaks over threshold with
a generalised Pareto of shape 0): a value ``d`` beyond the maximum gets
``p = (1 + d / (tail * beta)) ** -tail / (n + 1)`` instead of saturating at
``1 / (n + 1)``.  That is the predictive exceedance of an exponential whose
scale is estimated from ``tail`` excesses (``exp(-d / beta)`` once ``tail`` is
large); plugging the estimate straight into ``exp(-d / beta)`` would understate
the tail and overshoot the false-alarm budget on Pareto-tailed latency.
"""

from __future__ import annotations

import bisect
import collections

__all__ = ["ConformalReference"]


class ConformalReference:
    """Sorted sliding window giving one- or two-sided conformal p-values.

    Parameters
    ----------
    window
        Values kept.
    tail
        Extreme values on each side used for the tail scale.
    min_scale
        Floor on the tail scale (a constant stream then still has finite surprisals).

    Examples
    --------
    >>> ref = ConformalReference(window=100, tail=5)
    >>> for v in range(100):
    ...     ref.add(float(v))
    >>> ref.p_value(49.5, side="upper", u=0.5)
    0.5
    >>> ref.p_value(200.0, side="upper", u=0.5) < 1e-6
    True
    """

    SIDES = ("upper", "lower", "two-sided")

    def __init__(self, window: int, tail: int, min_scale: float = 0.0) -> None:
        self.window, self.tail, self.min_scale = window, tail, min_scale
        self._sorted: list[float] = []
        self._fifo: collections.deque[float] = collections.deque()

    def __len__(self) -> int:
        return len(self._sorted)

    @property
    def ready(self) -> bool:
        """Enough values to fit both tails (``4 * tail``)."""
        return len(self._sorted) >= 4 * self.tail

    def add(self, y: float) -> None:
        bisect.insort(self._sorted, y)
        self._fifo.append(y)
        if len(self._fifo) > self.window:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def values(self) -> list[float]:
        """The reference values, sorted (a copy)."""
        return list(self._sorted)

    def _tail_p(self, excess: float, beta: float) -> float:
        """Predictive exceedance probability of an exponential tail whose scale is estimated."""
        if beta <= 0:
            return 0.0
        return (1.0 + excess / (self.tail * beta)) ** -self.tail

    def _upper(self, y: float, n: int, above: int, ties: float) -> float:
        ref, t = self._sorted, self.tail
        if y > ref[-1]:
            beta = max(sum(ref[n - t :]) / t - ref[n - t - 1], self.min_scale)
            return self._tail_p(y - ref[-1], beta) / (n + 1)
        return (above + ties) / (n + 1)

    def _lower(self, y: float, n: int, below: int, ties: float) -> float:
        ref, t = self._sorted, self.tail
        if y < ref[0]:
            beta = max(ref[t] - sum(ref[:t]) / t, self.min_scale)
            return self._tail_p(ref[0] - y, beta) / (n + 1)
        return (below + ties) / (n + 1)

    def p_value(self, y: float, side: str, u: float) -> float:
        """P-value of ``y``; ``u`` is a uniform draw in [0, 1) used to break ties."""
        ref, n = self._sorted, len(self._sorted)
        lo, hi = bisect.bisect_left(ref, y), bisect.bisect_right(ref, y)
        ties = (hi - lo + 1) * u
        if side == "upper":
            return min(1.0, self._upper(y, n, n - hi, ties))
        if side == "lower":
            return min(1.0, self._lower(y, n, lo, ties))
        return min(1.0, 2.0 * min(self._upper(y, n, n - hi, ties), self._lower(y, n, lo, ties)))
