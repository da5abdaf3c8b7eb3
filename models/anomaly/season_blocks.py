"""Values in disjoint blocks, ranked by their medians: LatencyAnomaly's *seasonal_shift* (and *level_shift* on wandering latency).

While a period holds, the seasonal residual (the value minus the median of the same
phase in earlier cycles) is 0 give or take the noise, and a run of it away from 0 is a
level shift.  Ranked event by event, its surprisals are independent only if the noise
is: latency whose noise wanders with load around a daily cycle (AR(1) 0.7, a cycle of
288) gives runs of them that a CUSUM calibrated for independent ones takes for a
shift, 16 times the false-alarm budget.  Whitening the residual keeps the budget but
takes most of a real shift out of it (after its first event only ``1 - rho`` of it is
left: NAB 14 points lower), and so does widening the thresholds.

:class:`SeasonBlocks` takes the median of each ``block`` consecutive residuals instead
and ranks it against the medians of earlier blocks.  The dependence within a block
is in every block alike, so the rank is still conformal; between disjoint blocks
little of it is left (AR(1) 0.7: lag-1 autocorrelation 0.27 between consecutive
block medians, against 0.7 between residuals).  A shift moves every block median by
its full size, so a CUSUM over block surprisals keeps the run's evidence, at most
``block - 1`` events late.  A block's median also ignores a lone spike in it, which the
per-event tails (*seasonal_spike*, *spike*) see.

The same holds for the values themselves on latency that wanders with load (AR(1) 0.9):
their *level_shift* is scored in blocks (:mod:`~models.anomaly.latency_levels`).  There
the reference holds few block medians (83 of 24 values in a window of 2,000), so a block
median joins it only ``lag`` blocks later: with no change that changes no rank's law,
and a shift's first ``lag`` blocks are all ranked against the level before it, instead
of each against the shifted ones learned just before (a doubling: surprisals 7.6, 6.3,
4.0, 3.2 in a row without the lag).
"""

from __future__ import annotations

import collections
from typing import Any

from models.anomaly.conformal import MAX_SURPRISAL, ConformalReference
from models.anomaly.context import median_of_few

__all__ = ["MAX_BLOCK_TAIL", "SeasonBlocks", "block_tail"]

#: Extreme block medians a tail is fitted to, at most (fewer where the reference holds fewer than 8 per tail value).
MAX_BLOCK_TAIL = 12


def block_tail(window: int, block: int) -> int:
    """Tail size of the reference of ``window // block`` block medians: at most :data:`MAX_BLOCK_TAIL`, and at
    least 8 medians per tail value (``ConformalReference`` is ready at ``4 * tail``)."""
    return max(2, min(MAX_BLOCK_TAIL, window // block // 8))


class SeasonBlocks:
    """Medians of disjoint blocks of ``block`` values, and a sliding reference of earlier ones.

    :meth:`add` takes a value and returns the block's median when the block is full
    (else ``None``); the caller scores it against :attr:`reference` and then
    :meth:`learn` s it, unless the event crossed (:meth:`drop_open` then also discards a
    block still open, as a crossing's value is kept out of every reference).  A median
    learned joins the reference ``lag`` blocks later.

    Examples
    --------
    >>> blocks = SeasonBlocks(block=3, window=60)
    >>> [blocks.add(r) for r in (0.1, -0.2, 5.0)]  # the block's median: the spike does not move it
    [None, None, 0.1]
    >>> blocks.reference.window, blocks.reference.tail
    (20, 2)
    >>> lagged = SeasonBlocks(block=1, window=60, lag=2)
    >>> for m in (1.0, 2.0, 3.0):
    ...     lagged.learn(m)
    >>> len(lagged.reference)  # 2.0 and 3.0 are still waiting
    1
    """

    def __init__(self, block: int, window: int, lag: int = 0) -> None:
        self.block, self.lag = block, lag
        self.reference = ConformalReference(window // block, block_tail(window, block), min_scale=1e-3)
        self._open: list[float] = []
        self._waiting: collections.deque[float] = collections.deque()  # learned, joining the reference later

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("lag", 0)  # from before the lag: every median joined at once, as it did
        state.setdefault("_waiting", collections.deque())
        self.__dict__.update(state)

    @property
    def ready(self) -> bool:
        """Enough block medians to rank one (``4 * tail``)."""
        return self.reference.ready

    def add(self, value: float) -> float | None:
        """Add ``value`` to the open block; its median once it holds ``block`` values (it is then closed)."""
        self._open.append(value)
        if len(self._open) < self.block:
            return None
        median = median_of_few(self._open)
        self._open = []
        return median

    def learn(self, median: float) -> None:
        """A block's median, not crossing, joins the reference (once ``lag`` later ones are learned)."""
        self._waiting.append(median)
        if len(self._waiting) > self.lag:
            self.reference.add(self._waiting.popleft())

    def cusum_step(self, cusum: float, median: float, side: str, k: float) -> float:
        """The CUSUM ``cusum`` after one step by ``median``'s mean surprisal (``side`` of its p-value)
        against the reference, with reference value ``k``."""
        return max(0.0, cusum + self.reference.mean_surprisal(median, side, MAX_SURPRISAL) - k)

    def settle(self, median: float | None, crossed: bool) -> None:
        """After an event: drop the open block if it ``crossed``, else learn the ``median`` it closed (if any)."""
        if crossed:
            self.drop_open()
        elif median is not None:
            self.learn(median)

    def drop_open(self) -> None:
        """Discard the residuals of the block still open (a crossing, or the period lost)."""
        self._open.clear()
