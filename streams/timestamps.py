"""Event timestamps: epoch seconds or RFC 3339 strings, normalised to epoch seconds."""

from __future__ import annotations

import math
from datetime import datetime

__all__ = ["to_epoch_seconds"]

#: Epoch values above this are taken as milliseconds (1e11 s is the year 5138).
_MILLIS_ABOVE = 1e11
#: ... above this as microseconds, above ``_NANOS_ABOVE`` as nanoseconds.
_MICROS_ABOVE = 1e14
_NANOS_ABOVE = 1e17


def to_epoch_seconds(ts: float | int | str) -> float:
    """Epoch seconds from a number (s, or ms/µs/ns told apart by magnitude) or RFC 3339.

    Raises ``ValueError`` with a message starting ``bad timestamp`` for negative
    or non-finite numbers, unparsable strings, strings without a UTC offset and
    strings before 1970 (negative epoch seconds, refused as numbers too).

    >>> to_epoch_seconds("2024-01-02T03:04:05.5Z")
    1704164645.5
    >>> to_epoch_seconds(1704164645500)
    1704164645.5
    """
    if isinstance(ts, bool):
        raise ValueError(f"bad timestamp: expected number or RFC 3339 string, got {ts!r}")
    if isinstance(ts, (int, float)):
        value = float(ts)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"bad timestamp: {ts!r} is not a non-negative finite number")
        if value > _NANOS_ABOVE:
            return value / 1e9
        if value > _MICROS_ABOVE:
            return value / 1e6
        if value > _MILLIS_ABOVE:
            return value / 1e3
        return value
    try:
        parsed = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        raise ValueError(f"bad timestamp: {ts!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise ValueError(f"bad timestamp: {ts!r} has no UTC offset (RFC 3339 requires one)")
    value = parsed.timestamp()
    if value < 0:
        raise ValueError(f"bad timestamp: {ts!r} is before 1970 (negative epoch seconds)")
    return value
