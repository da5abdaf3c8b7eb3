"""The value's *level_shift* on latency that wanders with load: scored per block of values.

The value views of a LatencyAnomaly score the value net of its lag-1
autocorrelation (:class:`~models.anomaly.dependence.Whitener`): ``y - rho * (a - m)``
with ``a`` the last value and ``m`` the median of the raw reference.  That median
wanders with the noise's slow part (0.3 standard deviations of the innovations at
``rho`` 0.9 over a window of 2,000), and ``rho`` times its wander shifts the whitened
values for hundreds of events: their surprisals come in runs that the level_shift
CUSUM (``shift_k`` 1.5) takes for a shift.  On AR(1) 0.9 latency at the default
budget of 1 per million it raised 31 per million (5 in 160k events), none of them
single-event alarms.  The same wander is also what shows a real shift in full once
the median has moved to it (``rho`` times the shift; the whitened value alone keeps
only ``1 - rho`` of it): ranking innovations instead, where the median cancels out,
keeps the budget but found a level 1.3 times higher in 1 of 20 streams, not 20.

So while the values' ``rho`` is at least :data:`LEVEL_BLOCK_RHO` (and no period holds,
and the whitening does not rank innovations), level_shift steps once per block of
``level_block`` values, with the block's median (of the values as mapped, not
whitened) ranked against earlier blocks' (:class:`~models.anomaly.season_blocks.SeasonBlocks`;
its threshold for an ARL counted in blocks).  The medians of blocks of 24 values of
AR(1) 0.9 have a lag-1 autocorrelation of 0.23 (the values: 0.9), and a shift moves
every one of them in full.  The reference holds only ``window // level_block`` of
them, so a median joins it :data:`LEVEL_BLOCK_LAG` blocks late: a shift's first
blocks are ranked against the level before it.  Below that ``rho`` the per-event
CUSUM keeps the budget (AR(1) 0.7 and 0.8: no false alarm in 320k events at a budget
of 1 per million) and sees a shift sooner.  The blocks are filled from the first
event, so their reference is ready when the dependence shows; the CUSUM restarts from
0 whenever it changes between per event and per block (the two have different
thresholds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.anomaly.latency_cusums import LEVEL_SHIFT

if TYPE_CHECKING:
    from models.anomaly.dependence import Whitener
    from models.anomaly.season_blocks import SeasonBlocks

__all__ = ["LEVEL_BLOCK_LAG", "LEVEL_BLOCK_RHO", "LevelBlocks"]

#: Least lag-1 autocorrelation of the values at which their level_shift is scored in blocks.
LEVEL_BLOCK_RHO = 0.8
#: Blocks a median waits before it joins the blocks' reference.
LEVEL_BLOCK_LAG = 4


class LevelBlocks:
    """The level_shift in blocks of :class:`~models.anomaly.LatencyAnomaly` (a mixin over its state)."""

    if TYPE_CHECKING:
        _whitener: Whitener | None
        _level_blocks: SeasonBlocks | None
        _level_by_blocks: bool
        _cusum: list[float]

    def _level_mode(self, in_season: bool, innovations: bool) -> bool:
        """Whether level_shift steps per block at this event (its CUSUM restarts when that changes)."""
        blocks, whitener = self._level_blocks, self._whitener
        by_blocks = (
            blocks is not None
            and blocks.ready
            and not in_season
            and not innovations
            and whitener is not None
            and whitener.rho >= LEVEL_BLOCK_RHO
        )
        if by_blocks != self._level_by_blocks:
            self._cusum[LEVEL_SHIFT] = 0.0
            self._level_by_blocks = by_blocks
        return by_blocks

    def _level_block_step(self, y: float, in_season: bool, k: float) -> float | None:
        """Add ``y`` to the open block (none while a period holds); at a block's end, step
        level_shift by its median if in block mode.  The median closed, if any."""
        blocks = self._level_blocks
        if blocks is None:
            return None
        if in_season:  # level_shift is not in use: a block would mix the cycle's phases
            blocks.drop_open()
            return None
        median = blocks.add(y)
        if median is not None and self._level_by_blocks:
            self._cusum[LEVEL_SHIFT] = blocks.cusum_step(self._cusum[LEVEL_SHIFT], median, "upper", k)
        return median

    def _level_settle(self, median: float | None, crossed: bool) -> None:
        """After the event: the block's median is learned, or (the event ``crossed``) its block dropped."""
        if self._level_blocks is not None:
            self._level_blocks.settle(median, crossed)
