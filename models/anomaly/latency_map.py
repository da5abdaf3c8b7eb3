"""The map a LatencyAnomaly scores its values in, and when it changes: a floor found, or given up for a cycle.

A detector starts in ``asinh(x)``.  With ``floor`` (and ``min_value`` set) it looks for
the latency's fixed part every ``window`` events until one is found, once its raw
reference is full (short of crossings kept out: as soon as it can be) and while no
period holds (:mod:`~models.anomaly.floor`); once found it scores
``asinh((x - floor) / scale)``.  A cycle longer than a third of the values seen
shows only later, and a floor found before it was fitted to a mixture of levels: net
of it, the spread of the values would rise and fall with the cycle.  So once a period
holds, the detector goes back to ``asinh(x)``, looks for that period again there (found
net of such a floor, a cycle of 1,440 read as 1,365 until the next look, 3,000 events
later, and the residual against the wrong phase raised seasonal_shift), and looks for
no floor again.  It also goes back to ``asinh(x)`` once a value lies further below the
floor than the lowest value it was fitted to lay above it (the fit was wrong: on
lognormal latency wandering with load one was found at 7.24 ms, the lowest value then
7.43, and 6.97 ms came 700 events later; net of it, values near it read as extreme
lows, and the whitening's anchor with them), and looks for a floor again a window
later, that value among those it is fitted to (one fitted at 5.05 ms to AR(1) 0.97
latency over a 5 ms floor was refuted 2,325 events later; never looked for again,
the values stayed in ``asinh(x)``, and 5 alarms followed at the default budget).
Each change starts the detector over from its raw reference's values in the new map
(no alarm while they are replayed); its seasonal context keeps its history, mapped
anew.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from models.anomaly.conformal import ConformalReference
from models.anomaly.floor import PLAIN, ValueMap, estimate_floor
from models.anomaly.latency_cusums import CUSUMS

if TYPE_CHECKING:
    from models.anomaly.context import SeasonalContext
    from models.anomaly.dependence import Whitener
    from models.anomaly.precedents import KeptOut
    from models.anomaly.refractory import Crossings

__all__ = ["ValueMapping"]

#: What a detector starting over keeps of its own: the thresholds and the behaviour a snapshot
#: from before restores with (a fresh clone would take today's).
_CARRIED = (
    "_h_plain",
    "_h_season",
    "_h_season_blocks",
    "_h_level_blocks",
    "_severity_ties",
    "_tie_mean",
    "_short_precedent",
    "_floor_yields",
    "_plain_until_season_ready",
    "_long_season_blocks",
)


class ValueMapping:
    """The floor search and start-over of :class:`~models.anomaly.LatencyAnomaly` (a mixin over its state)."""

    if TYPE_CHECKING:
        window: int
        min_value: float | None
        _n: int
        _map: ValueMap
        _floor_check: float
        _floor_yields: bool
        _floor_refuted_below: float
        _context: SeasonalContext | None
        _whitener: Whitener | None
        _refs: dict[str, ConformalReference]
        _kept_out: dict[str, KeptOut]
        _crossings: Crossings

        def clone(self) -> Any: ...

        def _learn_one(self, x: Any) -> None: ...

    @property
    def _raw_reference(self) -> ConformalReference:
        """The values as they are (crossings kept out): the value reference itself unless whitened."""
        return self._whitener.raw if self._whitener is not None else self._refs["value"]

    def _check_map(self, x: float) -> None:
        """Before event ``x``: look for a floor when one is due, or give one up once a period holds
        (and look for the period again) or once ``x`` lies further below it than the lowest value it
        was fitted to lay above it (and look for a floor again a window later)."""
        if self._n >= self._floor_check:
            self._look_for_floor()
        elif self._map != PLAIN:
            context = self._context
            if self._floor_yields and context is not None and context.period is not None:
                self._start_over(PLAIN, self._raw_values())
                context.look_again()  # in asinh(x): the period was found net of a floor fitted to the cycle's levels
            elif x < self._floor_refuted_below:
                self._start_over(PLAIN, self._raw_values())
                self._floor_check = self._n + self.window

    def _raw_values(self) -> np.ndarray:
        """The raw reference's values in arrival order, unmapped (no rounding below ``min_value``)."""
        return np.maximum(self._map.inverse(np.asarray(self._raw_reference.in_order())), self.min_value)

    def _look_for_floor(self) -> None:
        """Look for the latency's floor in the raw reference (full, no period holding); if one is
        found, start over in the map net of it.  Otherwise look again ``window`` events later, or,
        while crossings kept out leave the reference short, as soon as it can be full (at ``window``
        events it was then looked for only a window later, the values meanwhile scored in ``asinh(x)``)."""
        if self._context is not None and self._context.period is not None:
            self._floor_check += self.window
            return  # a cycle's values are a mixture of levels, not one shifted lognormal
        missing = self.window - len(self._raw_reference)
        if missing > 0:  # crossings kept out: look again once as many more values can have joined
            self._floor_check = self._n + missing
            return
        self._floor_check += self.window
        xs = self._raw_values()
        found = estimate_floor(xs, self.min_value)  # type: ignore[arg-type]  # only with min_value set
        if found is not None:
            self._start_over(found, xs)
            # A value as far below the floor as the lowest one fitted lay above it refutes it.
            self._floor_refuted_below = 2.0 * found.floor - float(xs.min())

    def _start_over(self, new_map: ValueMap, xs: np.ndarray) -> None:
        """Start over in ``new_map`` from the raw reference's values ``xs`` (:meth:`_raw_values`; no
        alarm while they are replayed), not looking for a floor again unless the caller says when;
        the seasonal context keeps its history, mapped anew."""
        old_map = self._map
        fresh = self.clone()
        fresh._map, fresh._floor_check = new_map, math.inf
        for kept in _CARRIED:  # a snapshot from before goes on as it would have
            setattr(fresh, kept, getattr(self, kept))
        context, fresh._context = self._context, None
        for x in xs.tolist():
            fresh._learn_one(x)
        if context is not None:
            context.remap(lambda ys: new_map.many(old_map.inverse(ys)))
        fresh._context = context
        fresh._fired = fresh._crossed = False
        fresh._crossings.clear()
        fresh._cusum = [0.0] * len(CUSUMS)
        fresh._ratio, fresh._kind, fresh._n = 0.0, "none", self._n
        for kept in fresh._kept_out.values():
            kept.clear()
        self.__dict__ = fresh.__dict__
