"""``inferwatch gpu-collect``: NVML (``pynvml`` from nvidia-ml-py) samples into the GPU topic.

``read_sample(nvml, index, host)`` reads one GPU into a ``GpuSample`` with DCGM
field names; a field the driver does not support is left out, never guessed.
``collect`` reads one sample per GPU every ``interval`` seconds and hands each to
a sink: ``kafka_sink`` (the GPU topic, keyed by host) or ``lines_sink`` (JSON
lines, the same bytes, for checking a node without Kafka).  The NVML module is
passed in, so the reader is testable without a GPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any

from streams.decoding import encode_gpu_sample
from streams.records import GpuSample
from streams.settings import Settings

__all__ = ["NoGpuError", "Sink", "collect", "kafka_sink", "lines_sink", "load_nvml", "read_sample"]

#: Where ``collect`` puts each sample.
Sink = Callable[[GpuSample], Awaitable[None]]

log = logging.getLogger(__name__)


class NoGpuError(RuntimeError):
    """NVML works but sees no GPU."""

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


def _memory_info(nvml: Any, handle: Any) -> Any:
    """Framebuffer memory as nvidia-smi and DCGM count it: ``used`` without the driver's reservation.

    That is NVML's ``_v2`` query (``used``, ``free``, ``reserved``, ``total``); drivers or
    bindings without it give the v1 answer, whose ``used`` includes the reservation.
    """
    version = getattr(nvml, "nvmlMemory_v2", None)
    if version is not None:
        mem = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle, version=version))
        if mem is not None:
            return mem
    return _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))


def _clocks_event_reasons(nvml: Any, handle: Any) -> int:
    """The clocks-event reason bits (NVML's newer name first, then the "throttle" one it replaced)."""
    read = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(read(handle))


def read_sample(nvml: Any, index: int, host: str, xid: int = 0) -> GpuSample:
    """One sample of GPU ``index`` (``xid``: the last XID seen by the caller's event set)."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    uuid = _try(lambda: nvml.nvmlDeviceGetUUID(handle))
    fields: dict[str, float] = {"DCGM_FI_DEV_XID_ERRORS": float(xid)}
    util = _try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
    if util is not None:
        fields["DCGM_FI_DEV_GPU_UTIL"] = float(util.gpu)
        fields["DCGM_FI_DEV_MEM_COPY_UTIL"] = float(util.memory)
    mem = _memory_info(nvml, handle)
    if mem is not None:
        fields["DCGM_FI_DEV_FB_USED"] = mem.used / _MIB
        fields["DCGM_FI_DEV_FB_FREE"] = mem.free / _MIB
        fields["DCGM_FI_DEV_FB_TOTAL"] = mem.total / _MIB
        if hasattr(mem, "reserved"):
            fields["DCGM_FI_DEV_FB_RESERVED"] = mem.reserved / _MIB
    readers: dict[str, Callable[[], Any]] = {
        "DCGM_FI_DEV_GPU_TEMP": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "DCGM_FI_DEV_POWER_USAGE": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        "DCGM_FI_DEV_SM_CLOCK": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "DCGM_FI_DEV_MEM_CLOCK": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": lambda: _clocks_event_reasons(nvml, handle),
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


@contextlib.asynccontextmanager
async def kafka_sink(settings: Settings) -> AsyncIterator[Sink]:
    """A sink producing each sample to ``settings.gpu_topic`` (key: host); stops the producer on exit."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()

    async def send(sample: GpuSample) -> None:
        await producer.send(settings.gpu_topic, encode_gpu_sample(sample), key=sample.host.encode())

    try:
        yield send
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def lines_sink(stream: IO[bytes]) -> AsyncIterator[Sink]:
    """A sink writing each sample as one JSON line (the bytes the GPU topic would get), flushed."""

    async def send(sample: GpuSample) -> None:
        stream.write(encode_gpu_sample(sample) + b"\n")
        stream.flush()

    yield send


async def collect(
    nvml: Any,
    send: Sink,
    *,
    interval: float = 1.0,
    host: str | None = None,
    rounds: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Send a sample of every GPU each ``interval`` s (``rounds`` times, or until ``stop`` is set);
    returns samples sent.  Raises ``NoGpuError`` when NVML sees no GPU."""
    host = host or socket.gethostname()
    count = nvml.nvmlDeviceGetCount()
    if count < 1:
        raise NoGpuError("NVML sees no GPU on this node (is the container given the GPUs, e.g. NVIDIA_VISIBLE_DEVICES=all?)")
    events = _xid_events(nvml, count)
    last_xid = [0] * count
    stop = stop or asyncio.Event()
    sent = 0
    n = 0
    while (rounds is None or n < rounds) and not stop.is_set():
        while events is not None:
            data = _try(lambda: nvml.nvmlEventSetWait(events, 0))
            if data is None:
                break
            index = next((i for i in range(count) if nvml.nvmlDeviceGetHandleByIndex(i) == data.device), None)
            if index is not None:
                last_xid[index] = int(data.eventData)
        for i in range(count):
            await send(read_sample(nvml, i, host, last_xid[i]))
            sent += 1
        n += 1
        if rounds is None or n < rounds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    return sent
