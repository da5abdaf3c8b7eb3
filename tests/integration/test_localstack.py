"""The real local stack: Kafka round trip and lifecycle, Alertmanager delivery, Prometheus scrape."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from streams.localstack import (
    LocalAlertmanager,
    LocalKafka,
    LocalPrometheus,
    Status,
    WebhookRecorder,
    free_port,
)
from streams.localstack.kafka import metadata_brokers

pytestmark = pytest.mark.integration


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _post_json(url: str, body: Any) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(resp.status)


async def test_kafka_round_trip(kafka_bootstrap: str, unique_topic: str, unique_group: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(unique_topic, b"hello", key=b"k1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        unique_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        msg = await consumer.getone()
    finally:
        await consumer.stop()
    assert (msg.key, msg.value) == (b"k1", b"hello")


def test_kafka_start_is_idempotent(local_kafka: LocalKafka | None) -> None:
    if local_kafka is None:
        pytest.skip("Kafka reused from INFERWATCH_TEST_KAFKA")
    pid = local_kafka.pid()
    assert local_kafka.status() is Status.RUNNING
    assert local_kafka.start(timeout=10) == local_kafka.address
    assert local_kafka.pid() == pid
    # A fresh launcher over the same state dir sees the same running broker.
    again = LocalKafka(local_kafka.state_dir, local_kafka.port, local_kafka.controller_port)
    assert again.status() is Status.RUNNING
    assert again.start(timeout=10) == local_kafka.address
    assert again.pid() == pid


def test_kafka_crash_is_detected_and_recovered(tmp_path: Path) -> None:
    # A restarted broker waits for its old registration to expire: keep that short here.
    fast_fence = {"broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "500"}
    kafka = LocalKafka(
        tmp_path / "kafka", free_port(), free_port(), heap="256m", extra_config=fast_fence
    )
    try:
        kafka.start()
        first_pid = kafka.pid()
        kafka.kill()  # kill -9 the process group, pid file left behind
        assert kafka.status() is Status.CRASHED
        kafka.start()
        assert kafka.status() is Status.RUNNING
        assert kafka.pid() != first_pid
        assert metadata_brokers("127.0.0.1", kafka.port) == 1
    finally:
        kafka.stop()
    assert kafka.status() is Status.STOPPED


def test_alert_reaches_alertmanager_and_webhook(
    alertmanager_url: str,
    webhook: WebhookRecorder,
    local_alertmanager: LocalAlertmanager | None,
) -> None:
    labels = {"alertname": "InferwatchLocalstackTest", "run": uuid4().hex[:12], "severity": "info"}
    alert = {
        "labels": labels,
        "annotations": {"summary": "posted by test_localstack"},
        "generatorURL": "http://inferwatch.test/",
    }
    assert _post_json(f"{alertmanager_url}/api/v2/alerts", [alert]) == 200

    query = urllib.parse.urlencode({"filter": f'run="{labels["run"]}"'})
    listed = _get_json(f"{alertmanager_url}/api/v2/alerts?{query}")
    assert [a["labels"] for a in listed] == [labels]
    assert listed[0]["status"]["state"] == "active"

    if local_alertmanager is None:
        pytest.skip("external Alertmanager does not notify this session's webhook")

    def has_our_alert(payload: dict[str, Any]) -> bool:
        return any(a.get("labels") == labels for a in payload.get("alerts", []))

    payload = webhook.wait_for(has_our_alert, timeout=30)
    assert payload["status"] == "firing"
    assert payload["receiver"] == "webhook"
    assert payload["commonLabels"] == labels


def test_prometheus_ready(prometheus_url: str) -> None:
    with urllib.request.urlopen(f"{prometheus_url}/-/ready", timeout=10) as resp:
        assert resp.status == 200


def test_prometheus_scrapes_a_target(local_prometheus: LocalPrometheus | None) -> None:
    if local_prometheus is None:
        pytest.skip("Prometheus reused from INFERWATCH_TEST_PROMETHEUS; cannot add targets")
    registry = CollectorRegistry()
    run = uuid4().hex[:12]
    gauge = Gauge("inferwatch_localstack_test_value", "Set by test_localstack.", ["run"],
                  registry=registry)  # fmt: skip
    gauge.labels(run=run).set(42.5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    old_targets = list(local_prometheus.scrape_targets)
    try:
        local_prometheus.set_targets([*old_targets, f"127.0.0.1:{port}"])
        query = urllib.parse.urlencode({"query": f'inferwatch_localstack_test_value{{run="{run}"}}'})
        deadline = time.monotonic() + 30
        result: list[Any] = []
        while time.monotonic() < deadline:
            reply = _get_json(f"{local_prometheus.address}/api/v1/query?{query}")
            assert reply["status"] == "success"
            result = reply["data"]["result"]
            if result:
                break
            time.sleep(0.5)
        assert result, "Prometheus never returned the test metric"
        assert result[0]["metric"]["job"] == "inferwatch"
        assert float(result[0]["value"][1]) == 42.5
    finally:
        local_prometheus.set_targets(old_targets)
        server.shutdown()
        server.server_close()
        thread.join(5)
