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
the tail and overshoot the false-alarm budget on Pareto-tailed latency.  When
the ``tail + 1`` most extreme values all tie (a quantised metric: whole
milliseconds, a clipped gauge) the mean excess is 0; the scale is then at least
the step to the next distinct value, instead of ``min_scale``: otherwise a value
one step beyond (a 0 ms among whole-millisecond latencies whose lowest values
are all 1 ms) would get the largest surprisal, and, kept out of the reference as
an alarm, every later one would alarm again.  With ``extrapolate=False`` a value
beyond the extremes gets its plain conformal rank ``u / (n + 1)`` instead (valid
whatever the tail: for a value the caller knows has precedent).

:meth:`ConformalReference.mean_surprisal` gives ``-ln p`` averaged over the
tie-breaking draw, in closed form: the same mean (1 on an exchangeable stream),
no randomness, and on a quantised stream (where many reference values tie with
the new one) less spread than the randomised surprisal.
"""

from __future__ import annotations

import bisect
import collections
import math
from array import array
from typing import Any

__all__ = ["MAX_SURPRISAL", "ConformalReference", "surprisal"]

#: Largest surprisal a detector counts for one p-value (``p`` may underflow to 0 in the tail).
MAX_SURPRISAL = 50.0


def surprisal(p: float, cap: float = MAX_SURPRISAL) -> float:
    """``-ln p``, at most ``cap`` (also for ``p == 0``)."""
    return min(cap, -math.log(p)) if p > 0 else cap


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
    >>> ref.p_value(200.0, side="upper", u=0.5, extrapolate=False)  # the plain conformal rank
    0.0049504950495049506
    """

    SIDES = ("upper", "lower", "two-sided")

    def __init__(self, window: int, tail: int, min_scale: float = 0.0) -> None:
        self.window, self.tail, self.min_scale = window, tail, min_scale
        self._sorted: list[float] = []
        self._fifo: collections.deque[float] = collections.deque()

    def __len__(self) -> int:
        return len(self._sorted)

    def __getstate__(self) -> dict[str, Any]:
        """The values once, oldest first, as packed doubles: the sorted list is rebuilt on restore."""
        state = self.__dict__.copy()
        del state["_sorted"]
        state["_fifo"] = array("d", self._fifo)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        fifo = [float(v) for v in state["_fifo"]]
        state["_fifo"] = collections.deque(fifo)
        if "_sorted" not in state:  # a snapshot from before the sorted list was left out keeps its own
            state["_sorted"] = sorted(fifo)
        self.__dict__.update(state)

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

    @property
    def lowest(self) -> float:
        """The smallest reference value (``inf`` while empty)."""
        return self._sorted[0] if self._sorted else math.inf

    @property
    def highest(self) -> float:
        """The largest reference value (``-inf`` while empty)."""
        return self._sorted[-1] if self._sorted else -math.inf

    @property
    def median(self) -> float:
        """The middle reference value (upper middle for an even count; ``nan`` while empty)."""
        return self._sorted[len(self._sorted) // 2] if self._sorted else math.nan

    def kth(self, i: int) -> float:
        """The ``i``-th smallest reference value (from 0; negative ``i``: from the largest)."""
        return self._sorted[i]

    def ranks(self, y: float) -> tuple[int, int]:
        """Reference values below ``y`` and equal to it."""
        lo = bisect.bisect_left(self._sorted, y)
        return lo, bisect.bisect_right(self._sorted, y) - lo

    def count_above(self, y: float, strict: bool = False) -> int:
        """Reference values ``>= y`` (``> y`` if ``strict``)."""
        return len(self._sorted) - (bisect.bisect_right if strict else bisect.bisect_left)(self._sorted, y)

    def values(self) -> list[float]:
        """The reference values, sorted (a copy)."""
        return list(self._sorted)

    def in_order(self) -> list[float]:
        """The reference values, oldest first (a copy)."""
        return list(self._fifo)

    def tail_p(self, excess: float, beta: float) -> float:
        """Predictive exceedance probability, ``excess`` beyond the range, of an exponential tail
        whose scale ``beta`` is estimated from ``tail`` excesses (times ``1 / (n + 1)``: the p-value)."""
        if beta <= 0:
            return 0.0
        return (1.0 + excess / (self.tail * beta)) ** -self.tail

    def _upper(self, y: float, n: int, above: int, ties: float, extrapolate: bool = True) -> float:
        ref, t = self._sorted, self.tail
        if extrapolate and y > ref[-1]:
            beta = max(sum(ref[n - t :]) / t - ref[n - t - 1], self.min_scale)
            if ref[n - t - 1] == ref[-1]:  # the extremes all tie (a quantised metric): at least one step
                j = bisect.bisect_left(ref, ref[-1])
                if j > 0:
                    beta = max(beta, ref[-1] - ref[j - 1])
            return self.tail_p(y - ref[-1], beta) / (n + 1)
        return (above + ties) / (n + 1)

    def _lower(self, y: float, n: int, below: int, ties: float, extrapolate: bool = True) -> float:
        ref, t = self._sorted, self.tail
        if extrapolate and y < ref[0]:
            beta = max(ref[t] - sum(ref[:t]) / t, self.min_scale)
            if ref[t] == ref[0]:  # the extremes all tie (a quantised metric): at least one step
                j = bisect.bisect_right(ref, ref[0])
                if j < n:
                    beta = max(beta, ref[j] - ref[0])
            return self.tail_p(ref[0] - y, beta) / (n + 1)
        return (below + ties) / (n + 1)

    def p_value(self, y: float, side: str, u: float, extrapolate: bool = True) -> float:
        """P-value of ``y``; ``u`` is a uniform draw in [0, 1) used to break ties.

        With ``extrapolate=False`` a value beyond the window's range gets its plain
        conformal rank (``u / (n + 1)``), not the fitted tail's smaller p-value.
        """
        ref, n = self._sorted, len(self._sorted)
        lo, hi = bisect.bisect_left(ref, y), bisect.bisect_right(ref, y)
        ties = (hi - lo + 1) * u
        e = extrapolate
        if side == "upper":
            return min(1.0, self._upper(y, n, n - hi, ties, e))
        if side == "lower":
            return min(1.0, self._lower(y, n, lo, ties, e))
        return min(1.0, 2.0 * min(self._upper(y, n, n - hi, ties, e), self._lower(y, n, lo, ties, e)))

    def mean_surprisal(self, y: float, side: str, cap: float, extrapolate: bool = True) -> float:
        """Surprisal of ``y`` averaged over the tie-breaking draw: ``E_u[-ln p(y, u)]``, at most ``cap``.

        Within the window's range ``p(u) = min(1, c (a + t u))`` with ``a`` the reference
        values strictly beyond ``y`` (on the nearer side for ``two-sided``), ``t`` the
        ties (``y`` itself included) and ``c = 1 / (n + 1)`` (``2 / (n + 1)`` two-sided),
        so the mean is ``(1 / t)`` times the integral of ``max(0, -ln(c v))`` for ``v``
        from ``a`` to ``a + t``.  Beyond the range ``p`` does not depend on ``u``
        (the fitted tail; with ``extrapolate=False`` the plain conformal rank, whose
        mean surprisal is ``1 + ln(n + 1)``).  By the tower rule the mean surprisal
        is still 1 on an exchangeable stream, and averaging only shrinks its spread: a CUSUM
        calibrated for Exp(1) increments raises fewer false alarms on a quantised
        stream, not more.

        >>> ref = ConformalReference(window=100, tail=5)
        >>> for v in [1.0, 2.0] * 50:
        ...     ref.add(v)
        >>> round(ref.mean_surprisal(2.0, "upper", cap=50.0), 4)  # p uniform on (0, 51/101): 1 - ln(51/101)
        1.6833
        """
        ref, n = self._sorted, len(self._sorted)
        if extrapolate and ((side != "lower" and y > ref[-1]) or (side != "upper" and y < ref[0])):
            return surprisal(self.p_value(y, side, 0.0), cap)  # the fitted tail: no tie, no draw
        lo, hi = bisect.bisect_left(ref, y), bisect.bisect_right(ref, y)
        if side == "upper":
            a, c = n - hi, 1.0 / (n + 1)
        elif side == "lower":
            a, c = lo, 1.0 / (n + 1)
        else:
            a, c = min(n - hi, lo), 2.0 / (n + 1)
        t = hi - lo + 1
        b = min(a + t, 1.0 / c)  # past 1 / c the p-value is capped at 1: no surprisal
        if b <= a:
            return 0.0
        # integral of -ln(c v) dv = v (1 - ln(c v)), from a to b
        val = (b * (1.0 - math.log(c * b)) - (a * (1.0 - math.log(c * a)) if a > 0 else 0.0)) / t
        return min(cap, max(0.0, val))
