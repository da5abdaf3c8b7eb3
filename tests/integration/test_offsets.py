"""Input offsets on the real broker: holes that hold no records, and the probe that tells them apart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka_probe import OffsetProbe, committed_offsets
from streams.metrics import events_per_model, sample_sum
from streams.scenario import MODELS, Scenario
from streams.worker import ensure_topics, spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import metrics_text, run_settings, worker_log

pytestmark = pytest.mark.integration



def _events(n: int) -> list[bytes]:
    """``n`` valid inference events of the scenario's first model (warm-up only)."""
    steady = Scenario(seconds=60, rate=max(2.0, n / 20), seed=3, malformed=False)
    values = [m.value for m in steady.messages() if m.topic == "inference" and m.key == MODELS[0].encode()]
    assert len(values) >= n
    return values[:n]


async def _produce_in_transactions(bootstrap: str, topic: str, values: list[bytes], per_transaction: int) -> None:
    """Every ``per_transaction`` values in one committed transaction: each commit leaves a marker offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{time.monotonic_ns()}")
    await producer.start()
    try:
        for start in range(0, len(values), per_transaction):
            async with producer.transaction():
                for value in values[start : start + per_transaction]:
                    await producer.send(topic, value, key=MODELS[0].encode(), partition=0)
    finally:
        await producer.stop()


def test_probe_finds_the_record_after_transaction_markers(kafka_bootstrap: str, unique_topic: str) -> None:
    async def go() -> tuple[int | None, int | None, int | None]:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(unique_topic, 1, 1)])
        finally:
            await admin.close()
        await _produce_in_transactions(kafka_bootstrap, unique_topic, [b"{}"] * 4, per_transaction=2)
        probe = OffsetProbe(kafka_bootstrap)
        try:
            # offsets: 0 1 [marker 2] 3 4 [marker 5]
            return (await probe.first_offset_from(unique_topic, 0, 2), await probe.first_offset_from(unique_topic, 0, 1),
                    await probe.first_offset_from(unique_topic, 0, 5, timeout=1.0))
        finally:
            await probe.close()

    after_marker, plain, at_end = asyncio.run(go())
    assert (after_marker, plain, at_end) == (3, 1, None)


def test_transactional_input_is_processed_exactly_once_without_seeking(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = run_settings(kafka_bootstrap)
    asyncio.run(ensure_topics(settings, 1))
    values = _events(300)
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, log)
    try:
        wait_healthy(settings.web_port, worker, log)
        asyncio.run(_produce_in_transactions(kafka_bootstrap, settings.inference_topic, values, per_transaction=25))
        deadline = time.monotonic() + 90
        counted = 0
        while time.monotonic() < deadline:
            text = metrics_text(settings.web_port)
            counted = events_per_model(text)[MODELS[0]]
            if counted >= len(values):
                break
            time.sleep(0.5)
        wanted = len(values) + len(values) // 25 - 1  # 300 records + 12 markers: the commit passes the last record
        while time.monotonic() < deadline:  # commits come every few seconds
            committed = asyncio.run(committed_offsets(kafka_bootstrap, settings.app_id, [_tp(settings.inference_topic)]))
            if committed[_tp(settings.inference_topic)] == wanted:
                break
            time.sleep(0.5)
        text = metrics_text(settings.web_port)
    except Exception:
        print(worker_log(log))
        raise
    finally:
        stop_worker(worker)
    counted = events_per_model(text)[MODELS[0]]
    assert counted == len(values)
    assert sample_sum(text, "inferwatch_consumer_seeks_total") == 0  # the 12 marker holes were recognised, not re-fetched
    assert committed[_tp(settings.inference_topic)] == wanted


def _tp(topic: str):  # noqa: ANN202 - aiokafka's TopicPartition
    from aiokafka import TopicPartition

    return TopicPartition(topic, 0)
