"""``inferwatch demo``: the built-in scenario through a real Kafka, decoded live.

Starts the local Kafka (unless ``--bootstrap`` names one), produces the
baseline scenario to the inference and GPU topics, consumes it back from where
the topics ended before, decodes every message (bad ones go to the dead-letter
topic) and prints progress and a summary.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.deadletter import to_kafka
from streams.decoding import GpuDecoder, InferenceDecoder
from streams.intake import Intake
from streams.localstack import LocalKafka
from streams.localstack.__main__ import DEFAULTS
from streams.scenario import baseline
from streams.settings import Settings

__all__ = ["DemoSummary", "run_demo", "start_local_kafka"]


@dataclass
class DemoSummary:
    """What the demo produced and what came back."""

    produced: int
    consumed: int
    events_by_model: Counter[str]
    samples_by_host: Counter[str]
    dead_letters: Counter[str]
    seconds: float


def start_local_kafka(state_dir: Path) -> str:
    """Start (or find running) the local Kafka on its default port; returns its address."""
    kafka = LocalKafka(state_dir / "kafka", DEFAULTS["kafka_port"], DEFAULTS["controller_port"])
    click.echo(f"kafka         {kafka.start()}  (log {kafka.log_file})")
    return kafka.address


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or {0})]
        return await consumer.end_offsets(parts)
    finally:
        await consumer.stop()


async def run_demo(settings: Settings, *, seconds: int, rate: float, seed: int = 0) -> DemoSummary:
    """Produce the scenario, consume it back through the decoders; returns the summary."""
    started = time.monotonic()
    topics = {"inference": settings.inference_topic, "gpu": settings.gpu_topic}
    bootstrap = settings.kafka_bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for topic in topics.values():  # creates the topics (auto-create) before we note their ends
            await producer.client._wait_on_metadata(topic)
        starts = await _end_offsets(bootstrap, list(topics.values()))
        messages = list(baseline(seed=seed, seconds=seconds, rate=rate))
        with click.progressbar(messages, label="producing scenario", file=None) as bar:
            for msg in bar:
                await producer.send(topics[msg.topic], msg.value, key=msg.key, headers=msg.headers)
        await producer.flush()
    finally:
        await producer.stop()

    intakes = {settings.inference_topic: Intake(InferenceDecoder(settings)), settings.gpu_topic: Intake(GpuDecoder(settings))}
    by_model: Counter[str] = Counter()
    by_host: Counter[str] = Counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    dead_producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await dead_producer.start()
    consumed = 0
    try:
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        async with asyncio.timeout(120):
            while consumed < len(messages):
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    for m in records:
                        consumed += 1
                        result = intakes[m.topic].process(
                            topic=m.topic, partition=m.partition, offset=m.offset, key=m.key,
                            value=m.value, headers=list(m.headers), timestamp=m.timestamp / 1000,
                        )
                        for record in result.records:
                            (by_model if m.topic == settings.inference_topic else by_host)[
                                getattr(record, "model", None) or record.host  # type: ignore[union-attr]
                            ] += 1
                        if result.dead is not None:
                            key, value, headers = to_kafka(result.dead)
                            await dead_producer.send(settings.deadletter_topic, value, key=key, headers=headers)
                            click.echo(f"  dead letter  {m.topic}[{m.partition}]@{m.offset}: {result.dead.reason}: {result.dead.detail}")
                click.echo(f"\r  consumed {consumed}/{len(messages)}", nl=False)
        click.echo()
        await dead_producer.flush()
    finally:
        await dead_producer.stop()
        await consumer.stop()
    dead = Counter()
    for intake in intakes.values():
        dead.update(intake.rejected)
    return DemoSummary(len(messages), consumed, by_model, by_host, dead, time.monotonic() - started)


def print_summary(summary: DemoSummary, settings: Settings) -> None:
    """The closing table."""
    click.echo(f"\nproduced {summary.produced} messages, consumed {summary.consumed} in {summary.seconds:.1f}s")
    for model, n in sorted(summary.events_by_model.items()):
        click.echo(f"  inference events  {model:<20} {n:>7}")
    for host, n in sorted(summary.samples_by_host.items()):
        click.echo(f"  GPU samples       {host:<20} {n:>7}")
    for reason, n in sorted(summary.dead_letters.items()):
        click.echo(f"  dead letters      {reason:<20} {n:>7}  -> {settings.deadletter_topic}")
