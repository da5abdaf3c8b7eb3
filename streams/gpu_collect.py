"""``inferwatch gpu-collect``: NVML (``pynvml`` from nvidia-ml-py) samples into the GPU topic.

``read_sample(nvml, index, host)`` reads one GPU into a ``GpuSample`` with DCGM
field names; a field the driver does not support is left out, never guessed.
``collect`` produces one sample per GPU every ``interval`` seconds.  The NVML
module is passed in, so the reader is testable without a GPU.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.decoding import encode_gpu_sample
from streams.records import GpuSample
from streams.settings import Settings

__all__ = ["collect", "load_nvml", "read_sample"]

log = logging.getLogger(__name__)
_MIB = 1024 * 1024


def load_nvml() -> Any:
    """The initialised ``pynvml`` module; raises ``RuntimeError`` with a hint when unavailable."""
    try:
        import pynvml
    except ImportError as exc:
        raise RuntimeError("pynvml not installed: pip install 'inferwatch[gpu]' (nvidia-ml-py)") from exc
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError subclasses vary by driver
        raise RuntimeError(f"NVML unavailable (no NVIDIA driver on this node?): {exc}") from exc
    return pynvml


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends: the field is absent
        return None


def read_sample(nvml: Any, index: int, host: str, xid: int = 0) -> GpuSample:
    """One sample of GPU ``index`` (``xid``: the last XID seen by the caller's event set)."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    uuid = _try(lambda: nvml.nvmlDeviceGetUUID(handle))
    fields: dict[str, float] = {"DCGM_FI_DEV_XID_ERRORS": float(xid)}
    util = _try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
    if util is not None:
        fields["DCGM_FI_DEV_GPU_UTIL"] = float(util.gpu)
        fields["DCGM_FI_DEV_MEM_COPY_UTIL"] = float(util.memory)
    mem = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    if mem is not None:
        fields["DCGM_FI_DEV_FB_USED"] = mem.used / _MIB
        fields["DCGM_FI_DEV_FB_FREE"] = mem.free / _MIB
        fields["DCGM_FI_DEV_FB_TOTAL"] = mem.total / _MIB
    readers: dict[str, Callable[[], Any]] = {
        "DCGM_FI_DEV_GPU_TEMP": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "DCGM_FI_DEV_POWER_USAGE": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        "DCGM_FI_DEV_SM_CLOCK": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "DCGM_FI_DEV_MEM_CLOCK": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": lambda: nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle),
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": lambda: nvml.nvmlDeviceGetTotalEccErrors(
            handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
        ),
    }
    for name, read in readers.items():
        value = _try(read)
        if value is not None:
            fields[name] = float(value)
    if isinstance(uuid, bytes):
        uuid = uuid.decode()
    return GpuSample(ts=time.time(), host=host, gpu=index, uuid=uuid, fields=fields)


def _xid_events(nvml: Any, count: int) -> Any:
    """An NVML event set for critical XIDs of every GPU, or None when unsupported."""
    try:
        events = nvml.nvmlEventSetCreate()
        for i in range(count):
            nvml.nvmlDeviceRegisterEvents(nvml.nvmlDeviceGetHandleByIndex(i), nvml.nvmlEventTypeXidCriticalError, events)
        return events
    except Exception as exc:  # noqa: BLE001
        log.warning("XID events unavailable: %s", exc)
        return None


async def collect(nvml: Any, settings: Settings, *, interval: float = 1.0, host: str | None = None, rounds: int | None = None) -> int:
    """Produce samples of every GPU each ``interval`` s (``rounds`` times, or forever); returns samples sent."""
    host = host or socket.gethostname()
    count = nvml.nvmlDeviceGetCount()
    events = _xid_events(nvml, count)
    last_xid = [0] * count
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    sent = 0
    try:
        n = 0
        while rounds is None or n < rounds:
            while events is not None:
                data = _try(lambda: nvml.nvmlEventSetWait(events, 0))
                if data is None:
                    break
                index = next((i for i in range(count) if nvml.nvmlDeviceGetHandleByIndex(i) == data.device), None)
                if index is not None:
                    last_xid[index] = int(data.eventData)
            for i in range(count):
                sample = read_sample(nvml, i, host, last_xid[i])
                await producer.send(settings.gpu_topic, encode_gpu_sample(sample), key=host.encode())
                sent += 1
            n += 1
            await asyncio.sleep(interval)
    finally:
        await producer.stop()
    return sent
