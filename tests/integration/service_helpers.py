"""Helpers for tests that run real workers: settings per run, replay, reading the alerts topic."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka_probe import committed_offsets
from streams.localstack import free_port
from streams.records import Alert
from streams.replay import replay
from streams.scenario import Scenario, ScenarioMessage
from streams.settings import Settings
from streams.worker import spawn_worker, stop_worker, wait_healthy


def run_settings(kafka: str, alertmanager_url: str = "", **overrides: object) -> Settings:
    """Settings for one isolated run: its own app id, topics and web port."""
    run = f"it-{uuid4().hex[:10]}"
    base = dict(
        kafka_bootstrap=kafka, app_id=run, inference_topic=f"{run}.inference", gpu_topic=f"{run}.gpu",
        alerts_topic=f"{run}.alerts", deadletter_topic=f"{run}.deadletter", control_topic=f"{run}.control",
        alertmanager_url=alertmanager_url, web_port=free_port(), warmup_events=1000, resolve_after_seconds=30.0,
        gpu_warmup_samples=100,  # the recorded GPU traces' job start, 374 samples in, must alarm
        grafana_url="http://grafana.test", alertmanager_resend_seconds=5.0,
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


#: Open Inference Protocol bodies of a KServe request of two rows and its response.
KSERVE_REQUEST = {"inputs": [{"name": "amount", "shape": [2], "datatype": "FP32", "data": [10.5, 99.0]}]}
KSERVE_RESPONSE = {"outputs": [{"name": "probs", "shape": [2, 2], "datatype": "FP32", "data": [0.9, 0.1, 0.3, 0.7]}]}


def kserve_half(kind: str, ce_id: str, model: str, body: dict, time: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A KServe payload-logger CloudEvent in binary mode, ``(value, headers)``: ``kind`` is
    ``"request"`` or ``"response"``, ``time`` its ``ce_time`` (ISO 8601)."""
    headers = [
        ("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()), ("ce_type", f"org.kubeflow.serving.inference.{kind}".encode()),
        ("ce_source", b"http://fraud-predictor/"), ("ce_time", time.encode()),
        ("ce_inferenceservicename", model.encode()), ("content-type", b"application/json"),
    ]
    return json.dumps(body).encode(), headers


def replay_messages(messages: Iterable[ScenarioMessage], settings: Settings, speed: float) -> dict[str, int]:
    return asyncio.run(replay((m.value for m in messages), settings, speed=speed))


def produce(settings: Settings, topic: str, key: bytes, messages: Iterable[tuple[bytes, list[tuple[str, bytes]]]],
            partition: int | None = None) -> None:
    """Produce ``(value, headers)`` messages to ``topic`` with ``key``, in order (to ``partition``: else the key's)."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            for value, headers in messages:
                await producer.send_and_wait(topic, value, key=key, headers=headers, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(go())


def split(scenario: Scenario, at_second: float) -> tuple[list[ScenarioMessage], list[ScenarioMessage]]:
    """The scenario's messages before and from ``at_second``."""
    cut = scenario.at(at_second)
    messages = list(scenario.messages())
    return [m for m in messages if m.ts < cut], [m for m in messages if m.ts >= cut]


def read_alerts(settings: Settings, until: Callable[[list[Alert]], bool], timeout: float = 120.0, settle: float = 3.0) -> list[Alert]:
    """Alerts on the run's topic from the start, until ``until(alerts)`` holds (then ``settle`` s more)."""

    async def go() -> list[Alert]:
        consumer = AIOKafkaConsumer(settings.alerts_topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        alerts: list[Alert] = []
        done_at: float | None = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    alerts.extend(msgspec.json.decode(m.value, type=Alert) for m in records)
                if done_at is None and until(alerts):
                    done_at = time.monotonic()
                if done_at is not None and time.monotonic() - done_at >= settle:
                    break
        finally:
            await consumer.stop()
        return alerts

    return asyncio.run(go())


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def worker_log(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``check`` every half second until it holds; ``AssertionError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@contextmanager
def running_worker(settings: Settings, log: Path, *earlier: Path, crash: bool = False, partitions: int = 1) -> Iterator[None]:
    """A worker running (healthy) for the block: killed after it when ``crash`` (no clean shutdown, no
    final commit), else stopped; on a failure its log and the ``earlier`` workers' are printed."""
    worker = spawn_worker(settings, log, partitions=partitions)
    try:
        wait_healthy(settings.web_port, worker, log)
        yield
    except Exception:
        print(*(worker_log(path) for path in (*earlier, log)))
        raise
    finally:
        if crash:
            worker.kill()
            worker.wait()
        else:
            stop_worker(worker)


def committed_inference_offset(settings: Settings, partition: int = 0) -> int:
    """The offset the run's consumer group has committed on an inference partition (0: none yet)."""
    tp = TopicPartition(settings.inference_topic, partition)
    return asyncio.run(committed_offsets(settings.kafka_bootstrap, settings.app_id, [tp]))[tp] or 0
