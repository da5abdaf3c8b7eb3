"""Shared pytest fixtures.

Local stack (session-scoped, started lazily on first use, on free 127.0.0.1 ports in
a pytest tmp dir, stopped at session end):

* ``kafka_bootstrap``   -> "127.0.0.1:PORT"      (reuse: env INFERWATCH_TEST_KAFKA)
* ``alertmanager_url``  -> "http://127.0.0.1:PORT" (reuse: INFERWATCH_TEST_ALERTMANAGER)
* ``prometheus_url``    -> "http://127.0.0.1:PORT" (reuse: INFERWATCH_TEST_PROMETHEUS)
* ``webhook``           -> in-process WebhookRecorder the session Alertmanager notifies
* ``local_kafka`` / ``local_alertmanager`` / ``local_prometheus`` -> the launcher, or
  None when the service is reused from the environment (tests needing control skip).

Per test: ``unique_topic`` / ``unique_group`` give fresh Kafka names.
Needs ``deploy/install.sh`` to have run (Kafka jars, Prometheus, Alertmanager).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from streams.localstack import (
    LocalAlertmanager,
    LocalKafka,
    LocalPrometheus,
    WebhookRecorder,
    free_port,
)

ENV_KAFKA = "INFERWATCH_TEST_KAFKA"
ENV_PROMETHEUS = "INFERWATCH_TEST_PROMETHEUS"
ENV_ALERTMANAGER = "INFERWATCH_TEST_ALERTMANAGER"


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session tmp dir holding the local stack's state (configs, data, logs)."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def local_kafka(stack_dir: Path) -> Iterator[LocalKafka | None]:
    """The session's Kafka launcher (started), or None if ``INFERWATCH_TEST_KAFKA`` is set."""
    if os.environ.get(ENV_KAFKA):
        yield None
        return
    kafka = LocalKafka(stack_dir / "kafka", port=free_port(), controller_port=free_port())
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka: LocalKafka | None) -> str:
    """Bootstrap servers of a running Kafka broker, e.g. ``"127.0.0.1:40123"``."""
    return local_kafka.address if local_kafka is not None else os.environ[ENV_KAFKA]


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookRecorder]:
    """In-process webhook recorder; the session Alertmanager sends notifications to it."""
    recorder = WebhookRecorder()
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


@pytest.fixture(scope="session")
def local_alertmanager(
    stack_dir: Path, webhook: WebhookRecorder
) -> Iterator[LocalAlertmanager | None]:
    """The session's Alertmanager (notifying ``webhook``), or None when reused from env."""
    if os.environ.get(ENV_ALERTMANAGER):
        yield None
        return
    am = LocalAlertmanager(stack_dir / "alertmanager", port=free_port(), webhook_url=webhook.url)
    am.start()
    try:
        yield am
    finally:
        am.stop()


@pytest.fixture(scope="session")
def alertmanager_url(local_alertmanager: LocalAlertmanager | None) -> str:
    """Base URL of a running Alertmanager (API v2 under ``/api/v2``)."""
    if local_alertmanager is not None:
        return local_alertmanager.address
    return os.environ[ENV_ALERTMANAGER].rstrip("/")


@pytest.fixture(scope="session")
def local_prometheus(stack_dir: Path) -> Iterator[LocalPrometheus | None]:
    """The session's Prometheus (no scrape targets; add with ``set_targets``), or None."""
    if os.environ.get(ENV_PROMETHEUS):
        yield None
        return
    prom = LocalPrometheus(
        stack_dir / "prometheus", port=free_port(), scrape_targets=[], scrape_interval=1.0
    )
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture(scope="session")
def prometheus_url(local_prometheus: LocalPrometheus | None) -> str:
    """Base URL of a running Prometheus (``/api/v1/query`` etc.)."""
    if local_prometheus is not None:
        return local_prometheus.address
    return os.environ[ENV_PROMETHEUS].rstrip("/")


@pytest.fixture
def unique_topic() -> str:
    """A Kafka topic name no other test uses."""
    return f"t-{uuid4().hex[:12]}"


@pytest.fixture
def unique_group() -> str:
    """A Kafka consumer group id no other test uses."""
    return f"g-{uuid4().hex[:12]}"
