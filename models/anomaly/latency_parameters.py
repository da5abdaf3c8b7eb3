"""Which settings of a ``LatencyAnomaly`` are valid (one check per parameter, in signature order), and which values."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from models.anomaly.cusum_calibration import check_reference_value
from models.base import check_int, check_positive, is_finite_number
from models.calibration import check_budget

if TYPE_CHECKING:
    from models.anomaly.latency_anomaly import LatencyAnomaly

__all__ = ["check_parameters", "check_value"]


def check_value(x: Any, min_value: float | None) -> float:
    """``x`` as a float; ``ValueError`` unless it is a finite real number ``>= min_value`` (any, if ``None``)."""
    try:
        x = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value must be a real number, got {x!r}") from exc
    if not math.isfinite(x):
        raise ValueError(f"value must be finite, got {x!r}")
    if min_value is not None and x < min_value:
        raise ValueError(f"value must be >= {min_value}, got {x!r}")
    return x


def check_parameters(det: LatencyAnomaly) -> None:
    """Raise ``ValueError`` naming the first invalid parameter of ``det`` (set as attributes) and its valid range."""
    tail, window = det.tail, det.window
    check_int("tail", tail, 2)
    check_int("window", window, 8 * tail, low_text=f"8 * tail = {8 * tail}")
    for name in ("spike_k", "shift_k", "volatility_k"):
        check_reference_value(name, getattr(det, name))
    if not (det.shift_k < det.spike_k and det.volatility_k < det.spike_k):
        raise ValueError(f"shift_k and volatility_k must be < spike_k = {det.spike_k!r}")
    check_budget(det.budget)
    if det.min_value is not None and not is_finite_number(det.min_value):
        raise ValueError(f"min_value must be a finite number or None, got {det.min_value!r}")
    check_int("recent", det.recent, 1)
    prominence = det.season_prominence
    if prominence is not None and not (is_finite_number(prominence) and 0.0 < prominence <= 2.0):
        raise ValueError(f"season_prominence must be in (0, 2] or None, got {prominence!r}")
    check_positive("severity_weight", det.severity_weight, allow_zero=True)
    check_positive("corroboration_weight", det.corroboration_weight, allow_zero=True)
    check_int("refractory", det.refractory, 0)
    check_int("precedent_after", det.precedent_after, 0, allow_none=True)
    short = det.short_window
    if not isinstance(short, int) or isinstance(short, bool) or not (short == 0 or 8 * tail <= short <= window):
        raise ValueError(f"short_window must be 0 or an int in [8 * tail, window], got {short!r}")
    if not isinstance(det.drops, bool):
        raise ValueError(f"drops must be a bool, got {det.drops!r}")
    if not isinstance(det.whiten, bool):
        raise ValueError(f"whiten must be a bool, got {det.whiten!r}")
    if not isinstance(det.floor, bool):
        raise ValueError(f"floor must be a bool, got {det.floor!r}")
    for name in ("season_block", "level_block"):
        block = getattr(det, name)
        if not isinstance(block, int) or isinstance(block, bool) or not (block == 0 or 2 <= block <= window // 16):
            raise ValueError(f"{name} must be 0 or an int in [2, window // 16 = {window // 16}], got {block!r}")
    check_int("warmup", det.warmup, 0)
