"""``inferwatch replay``: JSONL(.gz) of inference events or GPU samples into Kafka.

Each line goes to the inference or the GPU topic by its shape (GPU samples have
``host`` and ``gpu`` but no ``model``; Telegraf metrics are GPU samples), keyed
by model or host.  Lines that are not valid JSON go to the inference topic
unchanged, where the worker dead-letters them — a replay is faithful.  Pacing
follows the lines' ``ts`` scaled by ``1 / speed`` (``speed`` 0: as fast as possible).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer

from streams.line_files import numbered_lines
from streams.settings import Settings
from streams.timestamps import to_epoch_seconds

__all__ = ["classify", "read_lines", "replay"]

_ANY = msgspec.json.Decoder()


def classify(line: bytes) -> tuple[str, bytes | None, float | None]:
    """``(topic kind, key, event time)`` of one line; kind is ``inference`` or ``gpu``."""
    try:
        obj: Any = _ANY.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return "inference", None, None
    if not isinstance(obj, dict):
        return "inference", None, None
    try:
        ts = to_epoch_seconds(obj.get("ts", obj.get("timestamp")))
    except (ValueError, TypeError):
        ts = None
    if obj.get("name") == "nvidia_smi" or isinstance(obj.get("metrics"), list):
        host = (obj.get("tags") or {}).get("host") if isinstance(obj.get("tags"), dict) else None
        return "gpu", str(host).encode() if host else None, ts
    if "model" not in obj and "host" in obj and "gpu" in obj:
        return "gpu", str(obj["host"]).encode(), ts
    model = obj.get("model")
    return "inference", str(model).encode() if isinstance(model, str) else None, ts


def read_lines(paths: Iterable[Path]) -> Iterator[bytes]:
    """Non-empty lines of every file, in order."""
    for path in paths:
        for _, line in numbered_lines(path):
            yield line


async def replay(lines: Iterable[bytes], settings: Settings, *, speed: float = 1.0, progress: Any = None) -> dict[str, int]:
    """Produce every line; returns counts per topic kind.  ``progress(n)`` is called per line."""
    topics = {"inference": settings.inference_topic, "gpu": settings.gpu_topic}
    counts = {"inference": 0, "gpu": 0}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, max_request_size=settings.max_message_bytes * 2)
    await producer.start()
    first_ts: float | None = None
    started = time.monotonic()
    try:
        for line in lines:
            kind, key, ts = classify(line)
            if speed > 0 and ts is not None:
                first_ts = ts if first_ts is None else first_ts
                delay = (ts - first_ts) / speed - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.send(topics[kind], line, key=key)
            counts[kind] += 1
            if progress is not None:
                progress(1)
        await producer.flush()
    finally:
        await producer.stop()
    return counts
