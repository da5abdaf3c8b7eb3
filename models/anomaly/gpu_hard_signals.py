"""GpuAnomaly's hard signals: events in a GPU sample that fire at once, whatever the statistics.

A hard signal fires on the sample where it appears:

* a new non-zero XID (a value different from the previous one; DCGM reports the last
  XID seen);
* a clocks-event-reasons bit of ``throttle_mask`` turning on (default HW slowdown 0x8,
  SW thermal 0x20, HW thermal 0x40, HW power brake 0x80; SW power cap 0x4 is normal
  under load);
* an increase of the uncorrectable (double-bit) ECC counter;
* the framebuffer used fraction reaching ``fb_full``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.anomaly.dcgm import FIELDS, OBSERVATION_FIELDS, THROTTLE_BITS

__all__ = ["check_hard_signal_settings", "hard_signals", "no_signals_yet"]

_CLK, _XID, _ECC = (OBSERVATION_FIELDS.index(f) for f in ("clocks_event_reasons", "xid", "ecc_uncorrectable"))
_MEM = FIELDS.index("mem_used_fraction")


def check_hard_signal_settings(fb_full: Any, throttle_mask: Any) -> None:
    """Raise ``ValueError`` unless ``fb_full`` is in (0, 1] and ``throttle_mask`` an int of :data:`THROTTLE_BITS`."""
    if not (isinstance(fb_full, (int, float)) and 0.0 < fb_full <= 1.0):
        raise ValueError(f"fb_full must be in (0, 1], got {fb_full!r}")
    valid_bits = sum(THROTTLE_BITS)
    if not isinstance(throttle_mask, int) or throttle_mask < 0 or throttle_mask & ~valid_bits:
        bits = ", ".join(hex(b) for b in THROTTLE_BITS)
        raise ValueError(f"throttle_mask must be an int made of the bits {bits}; got {throttle_mask!r}")


def no_signals_yet() -> dict[str, Any]:
    """The state :func:`hard_signals` keeps between samples, before the first."""
    return {"clk": 0, "xid": 0.0, "ecc": math.nan, "fb_full": False}


def hard_signals(obs: np.ndarray, last: dict[str, Any], fb_full: float, throttle_mask: int) -> list[str]:
    """The hard signals observation ``obs`` raises, given ``last`` (updated in place); NaN fields are skipped."""
    out = []
    if not math.isnan(obs[_XID]):
        xid = obs[_XID]
        if xid != 0 and xid != last["xid"]:
            out.append(f"xid_{int(xid)}")
        last["xid"] = xid
    if not math.isnan(obs[_CLK]):
        bits = int(obs[_CLK]) & throttle_mask
        out += [f"throttle_{THROTTLE_BITS[b]}" for b in sorted(THROTTLE_BITS) if bits & b and not last["clk"] & b]
        last["clk"] = bits
    if not math.isnan(obs[_ECC]):
        if obs[_ECC] > last["ecc"]:  # False while the previous count is unknown (NaN)
            out.append("ecc_uncorrectable")
        last["ecc"] = obs[_ECC]
    if not math.isnan(obs[_MEM]):
        full = bool(obs[_MEM] >= fb_full)
        if full and not last["fb_full"]:
            out.append("fb_nearly_full")
        last["fb_full"] = full
    return out
