"""The seasonal residual's part of a LatencyAnomaly event: its view, whitening and blocks.

While a period holds (:class:`~models.anomaly.context.SeasonalContext`) each value
gives a *seasonal residual*.  A long period's residual is whitened for the per-event
views (against block medians a day back it wanders with the noise's slow part).  The
residual as it is feeds *seasonal_shift* once per block
(:mod:`~models.anomaly.season_blocks`) once the blocks' reference is ready: for a short
period always, for a long one while its residual does not wander (the whitening's
lag-1 autocorrelation below :data:`_STEADY_RHO`).  Scored per event, two-sided, a
level shift of 0.87 standard deviations adds surprisals whose mean is about
``shift_k``: on a cycle of 5,000 requests a 1.3x slowdown was found in 6 seeds of 20,
in blocks in 20 of 20 (a doubling 23 events after its onset instead of 12.5, a
doubled spread 41.5 instead of 19.5: as on a short period).  A residual that wanders
more keeps the whitened per-event scoring: its block medians are dependent too (on
NAB's Twitter files, at 0.29-0.4, blocks cost 1.4 points).  A level shift alone
cannot raise the whitening's estimate to that bound unless larger than about 1.15 standard
deviations (by then it has alarmed).  Until the residual's own reference is ready to
rank it the detector stays out of season: its plain views stay in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.anomaly.conformal import ConformalReference
from models.anomaly.context import SeasonalContext
from models.anomaly.dependence import Whitener
from models.anomaly.latency_cusums import SEASONAL_SHIFT
from models.anomaly.season_blocks import SeasonBlocks

__all__ = ["SeasonStep", "SeasonalViews", "seasonal_context"]

_MIN_PERIOD = 16
#: Values the seasonal context keeps, in windows: periods up to a third of that (a window) are found.
_SEASON_HISTORY = 3
#: Values per block median of the seasonal context, where it looks for periods longer than a window
#: (up to 11.25 windows; odd, so that the median of mapped values is the mapped median).
_SEASON_BLOCK = 15
#: Shortest period looked for in the block medians, in windows.  From one window, the Twitter
#: files' weekly cycle (2,016 values) was found there, and with the value's level_shift off while
#: it held two NAB windows (PFE, KO) were lost; a cycle shorter than 1.5 windows is mostly inside
#: the value's reference anyway.
_LONG_CYCLE_FROM = 1.5
#: Lag-1 autocorrelation of a long period's residual (its whitening's ``rho``) below which its level
#: shifts are scored on block medians: there they are nearly independent (lag-1 of medians of 6 well under 0.1).
_STEADY_RHO = 0.25


def seasonal_context(window: int, prominence: float | None) -> SeasonalContext | None:
    """The seasonal context of a detector with a reference of ``window`` values (``None``: no
    ``prominence``, the seasonal view off)."""
    if prominence is None:
        return None
    return SeasonalContext(_SEASON_HISTORY * window, _MIN_PERIOD, prominence, _SEASON_BLOCK, int(_LONG_CYCLE_FROM * window))


@dataclass(slots=True)
class SeasonStep:
    """One event's seasonal residual (``None``: no period holds) and what scores and learns it."""

    residual: float | None
    whitener: Whitener | None  # a long period's whitening
    z: float | None  # the residual's normal score in that whitening
    in_season: bool  # a period holds and its residual's reference is ready (the seasonal thresholds apply)
    blocks: SeasonBlocks | None  # the residual's blocks (a short period's, or a long one's: see _residual_blocks)
    by_blocks: bool  # seasonal_shift steps per block now
    median: float | None = None  # the median of the block this event closed


class SeasonalViews:
    """The seasonal residual of :class:`~models.anomaly.LatencyAnomaly` (a mixin over its state)."""

    if TYPE_CHECKING:
        window: int
        tail: int
        season_block: int
        _context: SeasonalContext | None
        _refs: dict[str, ConformalReference]
        _plain_until_season_ready: bool
        _long_season_blocks: bool
        _season_whitener: Whitener | None
        _season_blocks: SeasonBlocks | None

    def _season_step(self, y: float, views: dict[str, float]) -> SeasonStep:
        """Add ``y`` to the seasonal context and, while a period holds, its residual (whitened for a
        long period) to ``views`` as ``"season"``."""
        res = self._context.add(y) if self._context is not None else None
        whitener, z = self._long_whitener() if res is not None else None, None
        if whitener is not None:
            # A long period's residual (against block medians a day back) wanders with the
            # noise's slow part, which the value's reference no longer absorbs: whitened.
            views["season"], z = whitener.value(res)
        elif res is not None:
            views["season"] = res  # value minus the median of the same phase in the last 3 (or 15) periods
        # Until the residual's reference is ready to rank it, the value's level_shift and the short
        # reference stay in use (a period just found is no reason to see less).
        in_season = res is not None and (self._refs["season"].ready or not self._plain_until_season_ready)
        blocks = self._residual_blocks(in_season and (whitener is None or self._long_season_blocks))
        steady = whitener is None or whitener.rho < _STEADY_RHO
        return SeasonStep(res, whitener, z, in_season, blocks, in_season and steady and blocks is not None and blocks.ready)

    def _season_block_step(self, step: SeasonStep, cusum: list[float], k: list[float]) -> None:
        """Add the event's residual (not whitened) to the open block; at a block's end step seasonal_shift by its median."""
        if step.blocks is None or step.residual is None:
            return
        step.median = step.blocks.add(step.residual)
        if step.median is not None and step.by_blocks:
            cusum[SEASONAL_SHIFT] = step.blocks.cusum_step(cusum[SEASONAL_SHIFT], step.median, "two-sided", k[SEASONAL_SHIFT])

    def _season_settle(self, step: SeasonStep, crossed: bool) -> None:
        """After the event: the long whitening and the blocks learn it, or (it ``crossed``) leave it out."""
        if step.blocks is not None:
            step.blocks.settle(step.median, crossed)
        if step.whitener is not None:
            if crossed:
                step.whitener.skip(step.residual)
            else:
                step.whitener.learn(step.residual, step.z)

    def _residual_blocks(self, in_use: bool) -> SeasonBlocks | None:
        """The residual's blocks while ``in_use`` (``None`` otherwise, or with ``season_block`` 0);
        a block left open when the period was lost is discarded."""
        if not self.season_block:
            return None
        if self._season_blocks is None:
            if not in_use:
                return None
            self._season_blocks = SeasonBlocks(self.season_block, self.window)
        if not in_use:
            self._season_blocks.drop_open()
            return None
        return self._season_blocks

    def _long_whitener(self) -> Whitener | None:
        """The whitening of the long-cycle residual while a long period holds, else None."""
        if self._context is None or not self._context.long:
            return None
        if self._season_whitener is None:
            self._season_whitener = Whitener(self.window, self.tail)
        return self._season_whitener
