"""Snapshots of ``LatencyAnomaly`` taken by earlier releases, brought up to the current state layout.

Each setting added since restores with the value that keeps the old behaviour,
so a worker upgraded mid-stream goes on exactly as its predecessor would have.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Any

from models.anomaly.dependence import Whitener
from models.anomaly.floor import PLAIN

__all__ = ["upgrade"]


def upgrade(state: dict[str, Any], n_cusums: int, views: Iterable[str]) -> dict[str, Any]:
    """``state`` (a snapshot's ``__dict__``, changed in place) with every later field filled in.

    ``n_cusums`` is the current number of CUSUMs, ``views`` the current views.
    """
    # Taken before the refractory span existed: every crossing alarmed.
    state.setdefault("refractory", 0)
    state.setdefault("_crossed", state.get("_fired", False))
    state.setdefault("_crossings", collections.deque())
    state.setdefault("corroboration_weight", 0.0)  # before corroboration: severity as it was
    state.setdefault("_severity_ties", False)  # before tie-counted severity: the draw's surprisal, as it was
    state.setdefault("_tie_mean", False)  # before the averaged surprisal: the CUSUMs add one draw's, as they did
    # Taken before kept-out crossings counted as precedent: never, and the short view's tail
    # always fitted.
    state.setdefault("precedent_after", None)
    state.setdefault("_kept_out", {view: collections.deque() for view in state["_refs"] if view != "short"})
    state.setdefault("_short_precedent", False)
    # Taken before the drop and short-reference CUSUMs: neither is used.
    if "short_window" not in state:
        state.update(short_window=0, drops=False)
        n_new = n_cusums - len(state["_cusum"])
        state["_cusum"] = list(state["_cusum"]) + [0.0] * n_new
        state["_k"] = list(state["_k"]) + [state["spike_k"]] * n_new
        state["_h_plain"] = list(state["_h_plain"]) + [math.inf] * (n_cusums - len(state["_h_plain"]))
        state["_h_season"] = list(state["_h_season"]) + [math.inf] * n_new
    # Taken before the value views were whitened: scored as they were (the raw values, no dependence).
    state.setdefault("whiten", False)
    # Taken while the whitening's parts were the detector's own fields: gathered into its Whitener.
    if "_whitener" not in state:
        raw, dependence, anchor, z_last = (state.pop(key, None) for key in ("_raw", "_dependence", "_anchor", "_z_last"))
        whitener = None
        if raw is not None:
            whitener = Whitener.__new__(Whitener)
            whitener.__setstate__(dict(raw=raw, dependence=dependence, anchor=anchor, _z_last=z_last))
        state["_whitener"] = whitener
    # Taken before the latency's floor was looked for: mapped as they were (asinh), and never looked for.
    state.setdefault("floor", False)
    state.setdefault("_map", PLAIN)
    state.setdefault("_floor_check", math.inf)
    # Taken before a floor yielded to a period found later: kept, as it was.
    state.setdefault("_floor_yields", False)
    # Taken before a value far below the floor gave it up: kept, as it was.
    state.setdefault("_floor_refuted_below", -math.inf)
    # Taken before long cycles were looked for: none is (the context restores without block medians).
    state.setdefault("_season_whitener", None)
    # Taken before a short period's residual was scored in blocks: per event, as it was; and before the
    # plain views stayed in use until the residual's reference was ready: off as soon as a period held.
    if "season_block" not in state:
        state.update(season_block=0, _season_blocks=None, _h_season_blocks=list(state["_h_season"]))
    state.setdefault("_plain_until_season_ready", False)
    # Taken before a long period's residual was scored in blocks: whitened, per event, as it was.
    state.setdefault("_long_season_blocks", False)
    # Taken before the values' level_shift was scored in blocks while they wander: per event, as it was.
    if "level_block" not in state:
        state.update(level_block=0, _level_blocks=None, _level_by_blocks=False, _h_level_blocks=list(state["_h_plain"]))
    state.setdefault("warmup", 0)  # taken before the warm-up: none, as it was
    for view in views:
        state["_surprisal"].setdefault(view, 0.0)
    return state
