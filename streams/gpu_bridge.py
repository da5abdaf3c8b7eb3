"""``inferwatch gpu-bridge``: scrape a dcgm-exporter ``/metrics`` page into GPU samples.

dcgm-exporter labels each series with ``gpu``, ``UUID`` and ``Hostname`` (or
``hostname``); its metric names are the DCGM field names.  ``parse_metrics``
groups one scrape into one ``GpuSample`` per GPU; ``bridge`` scrapes every
``interval`` seconds and produces the samples to the GPU topic.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.decoding import encode_gpu_sample
from streams.records import GpuSample
from streams.settings import Settings

__all__ = ["bridge", "parse_metrics"]

log = logging.getLogger(__name__)


def parse_metrics(text: str, *, now: float | None = None, default_host: str = "unknown") -> list[GpuSample]:
    """One sample per (host, gpu) in a dcgm-exporter scrape; non-DCGM and NaN series are skipped."""
    now = time.time() if now is None else now
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("DCGM_FI_") or not math.isfinite(sample.value):
                continue
            labels = sample.labels
            try:
                gpu = int(labels["gpu"])
            except (KeyError, ValueError):
                continue
            host = labels.get("Hostname") or labels.get("hostname") or default_host
            group = groups.setdefault((host, gpu), {"uuid": labels.get("UUID"), "fields": {}})
            group["fields"][sample.name] = float(sample.value)
    return [
        GpuSample(ts=now, host=host, gpu=gpu, uuid=g["uuid"], fields=g["fields"])
        for (host, gpu), g in sorted(groups.items())
    ]


async def bridge(url: str, settings: Settings, *, interval: float = 5.0, rounds: int | None = None, default_host: str = "unknown") -> int:
    """Scrape ``url`` every ``interval`` s (``rounds`` times, or forever); returns samples sent.

    A failed scrape is logged and retried next round; the bridge never exits on one.
    """
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    sent = 0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            n = 0
            while rounds is None or n < rounds:
                try:
                    async with session.get(url) as resp:
                        resp.raise_for_status()
                        text = await resp.text()
                    for sample in parse_metrics(text, default_host=default_host):
                        await producer.send(settings.gpu_topic, encode_gpu_sample(sample), key=sample.host.encode())
                        sent += 1
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning("scrape of %s failed: %s", url, exc)
                n += 1
                if rounds is None or n < rounds:
                    await asyncio.sleep(interval)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
