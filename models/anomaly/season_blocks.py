"""A short period's seasonal residual in disjoint blocks: what LatencyAnomaly's *seasonal_shift* scores.

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
"""

from __future__ import annotations

from models.anomaly.conformal import ConformalReference
from models.anomaly.context import median_of_few

__all__ = ["MAX_BLOCK_TAIL", "SeasonBlocks", "block_tail"]

#: Extreme block medians a tail is fitted to, at most (fewer where the reference holds fewer than 8 per tail value).
MAX_BLOCK_TAIL = 12


def block_tail(window: int, block: int) -> int:
    """Tail size of the reference of ``window // block`` block medians: at most :data:`MAX_BLOCK_TAIL`, and at
    least 8 medians per tail value (``ConformalReference`` is ready at ``4 * tail``)."""
    return max(2, min(MAX_BLOCK_TAIL, window // block // 8))


class SeasonBlocks:
    """Medians of disjoint blocks of ``block`` residuals, and a sliding reference of earlier ones.

    :meth:`add` takes a residual and returns the block's median when the block is full
    (else ``None``); the caller scores it against :attr:`reference` and then
    :meth:`learn` s it, unless the event crossed (:meth:`drop_open` then also discards a
    block still open, as a crossing's value is kept out of every reference).

    Examples
    --------
    >>> blocks = SeasonBlocks(block=3, window=60)
    >>> [blocks.add(r) for r in (0.1, -0.2, 5.0)]  # the block's median: the spike does not move it
    [None, None, 0.1]
    >>> blocks.reference.window, blocks.reference.tail
    (20, 2)
    """

    def __init__(self, block: int, window: int) -> None:
        self.block = block
        self.reference = ConformalReference(window // block, block_tail(window, block), min_scale=1e-3)
        self._open: list[float] = []

    @property
    def ready(self) -> bool:
        """Enough block medians to rank one (``4 * tail``)."""
        return self.reference.ready

    def add(self, residual: float) -> float | None:
        """Add ``residual`` to the open block; its median once it holds ``block`` residuals (it is then closed)."""
        self._open.append(residual)
        if len(self._open) < self.block:
            return None
        median = median_of_few(self._open)
        self._open = []
        return median

    def learn(self, median: float) -> None:
        """A block's median, not crossing, joins the reference."""
        self.reference.add(median)

    def drop_open(self) -> None:
        """Discard the residuals of the block still open (a crossing, or the period lost)."""
        self._open.clear()
