"""Telegraf ``nvidia_smi`` metrics serialised as JSON, mapped to DCGM field names.

Telegraf's JSON serializer writes ``{"name", "tags", "fields", "timestamp"}``
per metric, or ``{"metrics": [...]}`` in batch mode.  Fields with a DCGM
equivalent are renamed to it; other numeric fields are kept as
``nvidia_smi_<field>``; the GPU index, host and uuid come from the tags.
"""

from __future__ import annotations

from typing import Any

from streams.decoding.native import gpu_sample_from_object
from streams.decoding.reasons import reject
from streams.records import GpuSample

__all__ = ["TELEGRAF_TO_DCGM", "is_telegraf", "samples_from_telegraf"]

#: Telegraf nvidia_smi field -> DCGM field (same units: %, MiB, °C, W, MHz).
TELEGRAF_TO_DCGM: dict[str, str] = {
    "utilization_gpu": "DCGM_FI_DEV_GPU_UTIL",
    "utilization_memory": "DCGM_FI_DEV_MEM_COPY_UTIL",
    "memory_used": "DCGM_FI_DEV_FB_USED",
    "memory_free": "DCGM_FI_DEV_FB_FREE",
    "memory_total": "DCGM_FI_DEV_FB_TOTAL",
    "temperature_gpu": "DCGM_FI_DEV_GPU_TEMP",
    "power_draw": "DCGM_FI_DEV_POWER_USAGE",
    "clocks_current_sm": "DCGM_FI_DEV_SM_CLOCK",
    "clocks_current_memory": "DCGM_FI_DEV_MEM_CLOCK",
    "fan_speed": "DCGM_FI_DEV_FAN_SPEED",
}


def is_telegraf(obj: Any) -> bool:
    """True for a Telegraf JSON metric or batch."""
    return isinstance(obj, dict) and (obj.get("name") == "nvidia_smi" or isinstance(obj.get("metrics"), list))


def samples_from_telegraf(obj: dict[str, Any]) -> list[GpuSample]:
    """One ``GpuSample`` per ``nvidia_smi`` metric; raises ``Rejected`` on a bad one."""
    metrics = obj["metrics"] if isinstance(obj.get("metrics"), list) else [obj]
    if not metrics:  # else the message would leave neither a record nor a dead letter
        raise reject("missing_field", "Telegraf batch with an empty 'metrics' list")
    return [_sample(m, i) for i, m in enumerate(metrics)]


def _sample(metric: Any, i: int) -> GpuSample:
    if not isinstance(metric, dict) or metric.get("name") != "nvidia_smi":
        raise reject("unknown_encoding", f"metrics[{i}] is not a Telegraf nvidia_smi metric")
    tags, fields = metric.get("tags"), metric.get("fields")
    if not isinstance(tags, dict) or not isinstance(fields, dict):
        raise reject("missing_field", "Telegraf metric needs 'tags' and 'fields' objects")
    for tag in ("host", "index"):
        if tag not in tags:
            raise reject("missing_field", f"Telegraf nvidia_smi metric lacks tag {tag!r}")
    index = tags["index"]
    if isinstance(index, int) and not isinstance(index, bool):
        gpu = index
    elif isinstance(index, str) and index.isascii() and index.isdigit():
        gpu = int(index)
    else:  # int() would also take true, 1.7, " 1 " and "1_0"
        raise reject("wrong_type", f"tag index {index!r} is not an integer")
    sample: dict[str, Any] = {"ts": metric.get("timestamp"), "host": tags["host"], "gpu": gpu}
    if sample["ts"] is None:
        raise reject("missing_field", "Telegraf metric lacks 'timestamp'")
    if tags.get("uuid"):
        sample["uuid"] = tags["uuid"]
    if tags.get("name"):
        sample["modelName"] = tags["name"]
    for name, value in fields.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            sample[TELEGRAF_TO_DCGM.get(name, f"nvidia_smi_{name}")] = value
    return gpu_sample_from_object(sample)
