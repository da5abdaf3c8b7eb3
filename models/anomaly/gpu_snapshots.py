"""Snapshots of ``GpuAnomaly`` taken by earlier releases, brought up to the current state layout.

Each setting added since restores with the value that keeps the old behaviour,
so a worker upgraded mid-stream goes on exactly as its predecessor would have.
"""

from __future__ import annotations

import collections
import math
from typing import Any

__all__ = ["upgrade"]


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (a snapshot's ``__dict__``, changed in place) with every later field filled in."""
    state.setdefault("refractory", 0)  # taken before the refractory span: every crossing alarms
    state.setdefault("_crossings", collections.deque())
    state.setdefault("_crossed", state.get("_fired", False))
    state.setdefault("relearn_after_alarm", False)  # taken before re-learning: sliding references only
    state.setdefault("_fresh", None)
    state.setdefault("_alarm_n", 0)
    # Taken before the level view: none, and the four CUSUMs' thresholds as they were.
    state.setdefault("block", 0)
    state.setdefault("_blocks", None)
    state.setdefault("_h_block", math.inf)
    state.setdefault("_block_ratio", 0.0)
    state.setdefault("_block_surprisal", {})
    state.setdefault("warmup", 0)  # taken before the warm-up: none, as it was
    return state
