"""What one GPU did over the last window of event time, for alerts' GPU context.

``GpuWindow.add(ts, fields)`` keeps the samples of the last ``seconds`` (at most
``max_samples``); ``summary()`` gives, per gauge of :data:`WINDOW_GAUGES`, its
``[min, mean, max]`` over them (one decimal), and the clock event reasons seen in
any of them (bits OR-ed): a model alert then shows whether its GPUs were busy,
hot or throttled through the incident, not only at the last sample.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["WINDOW_GAUGES", "GpuWindow"]

#: DCGM gauges summarised, by their name in the GPU context.
WINDOW_GAUGES = {
    "DCGM_FI_DEV_GPU_UTIL": "util_pct",
    "DCGM_FI_DEV_FB_USED": "fb_used_mib",
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_SM_CLOCK": "sm_clock_mhz",
}
_REASONS = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"


class GpuWindow:
    """The samples of one GPU in the last ``seconds`` of event time (at most ``max_samples``)."""

    def __init__(self, seconds: float, max_samples: int = 1000) -> None:
        self.seconds = seconds
        self._newest = float("-inf")
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=max_samples)

    def add(self, ts: float, fields: dict[str, float]) -> None:
        """Keep a sample's gauges and reasons, unless it is older than ``seconds`` before the newest;
        those that now are go."""
        self._newest = max(self._newest, ts)
        if ts >= self._newest - self.seconds:
            self._samples.append((ts, {f: fields[f] for f in (*WINDOW_GAUGES, _REASONS) if f in fields}))
        while self._samples and self._samples[0][0] < self._newest - self.seconds:
            self._samples.popleft()

    def summary(self) -> dict[str, Any]:
        """``{"seconds", "samples", <gauge>: [min, mean, max], "clock_event_reasons_any"}`` over the window
        (a gauge no sample had is left out; reasons only when some sample had them)."""
        since = self._newest - self.seconds  # a late sample may sit behind its elders' departure
        samples = [s for ts, s in self._samples if ts >= since]
        out: dict[str, Any] = {"seconds": self.seconds, "samples": len(samples)}
        for field, name in WINDOW_GAUGES.items():
            values = [s[field] for s in samples if field in s]
            if values:
                out[name] = [round(min(values), 1), round(sum(values) / len(values), 1), round(max(values), 1)]
        reasons = [int(s[_REASONS]) for s in samples if _REASONS in s]
        if reasons:
            bits = 0
            for r in reasons:
                bits |= r
            out["clock_event_reasons_any"] = bits
        return out
