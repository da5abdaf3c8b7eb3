"""Turn a GPU sample (DCGM field names) into a ``GpuAnomaly`` observation.

The observation is a 1-D float array laid out as :data:`FIELDS` (statistical
fields) followed by :data:`HARD_FIELDS` (inputs of the hard signals); a field
the sample lacks, cannot parse or reports as a DCGM *blank* sentinel is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["FIELDS", "HARD_FIELDS", "OBSERVATION_FIELDS", "THROTTLE_BITS", "DEFAULT_THROTTLE_MASK", "dcgm_observation"]

#: Fields scored statistically, in observation order.
FIELDS = ("gpu_util", "mem_used_fraction", "temperature", "power", "sm_clock", "mem_clock")
#: Fields feeding the hard signals, after :data:`FIELDS`.
HARD_FIELDS = ("clocks_event_reasons", "xid", "ecc_uncorrectable")
OBSERVATION_FIELDS = FIELDS + HARD_FIELDS

#: DCGM clocks-event (formerly "throttle") reason bits, ``DCGM_CLOCKS_EVENT_REASON_*``.
THROTTLE_BITS = {
    0x1: "gpu_idle",
    0x2: "clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
    0x100: "display_clocks",
}
#: Bits that are a hard signal by default: HW slowdown, SW and HW thermal, HW power brake.
#: SW power cap (0x4) is left out: a busy GPU sits at its power limit in normal operation.
DEFAULT_THROTTLE_MASK = 0x8 | 0x20 | 0x40 | 0x80

#: Values at or above this are DCGM "blank" sentinels (no data): the int32 blank
#: (0x7FFFFFF0) is the smallest; the int64 and fp64 (2**47) blanks are larger.
_BLANK = 0x7FFFFFF0

_SOURCES: dict[str, tuple[str, ...]] = {
    "gpu_util": ("DCGM_FI_DEV_GPU_UTIL",),
    "temperature": ("DCGM_FI_DEV_GPU_TEMP",),
    "power": ("DCGM_FI_DEV_POWER_USAGE",),
    "sm_clock": ("DCGM_FI_DEV_SM_CLOCK",),
    "mem_clock": ("DCGM_FI_DEV_MEM_CLOCK",),
    "clocks_event_reasons": ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"),
    "xid": ("DCGM_FI_DEV_XID_ERRORS",),
    "ecc_uncorrectable": ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL"),
}


def _number(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    if not math.isfinite(x) or x >= _BLANK:
        return math.nan
    return x


def _first(sample: Mapping[str, Any], names: tuple[str, ...]) -> float:
    for name in names:
        if name in sample:
            x = _number(sample[name])
            if not math.isnan(x):
                return x
    return math.nan


def dcgm_observation(sample: Mapping[str, Any]) -> np.ndarray:
    """Observation array (:data:`OBSERVATION_FIELDS` order) from DCGM field values.

    ``mem_used_fraction`` is ``FB_USED / FB_TOTAL`` when ``DCGM_FI_DEV_FB_TOTAL``
    is present, else ``FB_USED / (FB_USED + FB_FREE)``.

    >>> obs = dcgm_observation({"DCGM_FI_DEV_GPU_UTIL": 87, "DCGM_FI_DEV_FB_USED": 7600,
    ...                         "DCGM_FI_DEV_FB_FREE": 400, "DCGM_FI_DEV_XID_ERRORS": "0"})
    >>> dict(zip(OBSERVATION_FIELDS, obs.round(3).tolist()))["mem_used_fraction"]
    0.95
    >>> bool(np.isnan(obs[2]))  # no temperature in the sample
    True
    """
    out = {name: _first(sample, sources) for name, sources in _SOURCES.items()}
    used = _first(sample, ("DCGM_FI_DEV_FB_USED",))
    total = _first(sample, ("DCGM_FI_DEV_FB_TOTAL",))
    if math.isnan(total):
        total = used + _first(sample, ("DCGM_FI_DEV_FB_FREE",))
    out["mem_used_fraction"] = used / total if total > 0 else math.nan
    return np.array([out[name] for name in OBSERVATION_FIELDS], dtype=float)
