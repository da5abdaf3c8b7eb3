"""The NVML traces recorded on a real H200 (tests/data/nvml_trace/h200, h200_serving) through Kafka, a worker and Alertmanager."""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path

import pytest

from streams.localstack import LocalAlertmanager, WebhookRecorder, free_port
from streams.records import Alert
from streams.replay import replay
from streams.worker import spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import metrics_text, read_alerts, run_settings, worker_log

pytestmark = pytest.mark.integration

TRACE = Path(__file__).parents[1] / "data" / "nvml_trace" / "h200" / "trace.jsonl.gz"
SERVING = Path(__file__).parents[1] / "data" / "nvml_trace" / "h200_serving" / "trace.jsonl.gz"


def _notified(webhook: WebhookRecorder) -> set[tuple[str, str]]:
    """(severity, status) of every alert Alertmanager notified the webhook of."""
    return {(a["labels"].get("severity", ""), a["status"]) for p in webhook.received for a in p.get("alerts", [])}


def test_real_gpu_trace_pages_a_warning_then_escalates_to_critical(kafka_bootstrap: str, tmp_path: Path) -> None:
    webhook = WebhookRecorder()
    webhook.start()
    alertmanager = LocalAlertmanager(tmp_path / "alertmanager", port=free_port(), webhook_url=webhook.url)
    alertmanager.start()
    settings = run_settings(kafka_bootstrap, alertmanager.address)
    lines = gzip.open(TRACE).read().splitlines()
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, log)
    try:
        wait_healthy(settings.web_port, worker, log)
        assert asyncio.run(replay(lines, settings, speed=0)) == {"inference": 0, "gpu": 825}  # one burst: large batches
        done = lambda alerts: sum(a.status == "resolved" for a in alerts) >= 3  # noqa: E731
        alerts = read_alerts(settings, done, timeout=120.0, settle=2.0)
        t0 = min(a.starts_at for a in alerts) - 75.1  # the first alarm came 75.1 s into the trace
        got = [(a.status, a.severity, round(a.starts_at - t0, 1), a.statistic) for a in alerts]
        assert got == [
            ("firing", "warning", 75.1, "multivariate"),  # job start
            ("resolved", "warning", 75.1, "multivariate"),
            ("firing", "warning", 115.5, "multivariate"),  # job end
            ("resolved", "warning", 115.5, "multivariate"),  # escalated...
            ("firing", "critical", 140.1, "fb_nearly_full"),  # ...to the hard signal
            ("resolved", "critical", 140.1, "multivariate"),
        ], worker_log(log)
        assert all(isinstance(a, Alert) and a.host == "device" and a.gpu == "0" for a in alerts)
        deadline = time.monotonic() + 60
        wanted = {("warning", "firing"), ("warning", "resolved"), ("critical", "firing"), ("critical", "resolved")}
        while time.monotonic() < deadline and not wanted <= _notified(webhook):
            time.sleep(0.5)
        assert wanted <= _notified(webhook), [(a["labels"].get("severity"), a["status"], a["startsAt"], a["endsAt"]) for p in webhook.received for a in p["alerts"]]
        text = metrics_text(settings.web_port)
        assert 'inferwatch_gpu_samples_total{host="device"} 825.0' in text
        assert 'inferwatch_alerts_total{kind="gpu_anomaly",severity="critical",status="firing"} 1.0' in text
    finally:
        stop_worker(worker)
        alertmanager.stop()
        webhook.stop()


def test_real_serving_trace_alerts_at_the_start_the_saturation_and_the_end(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The H200 serving trace (tests/data/nvml_trace/h200_serving) through Kafka and a worker: one
    alert when serving starts, one when it saturates (the level view: each single step of that
    change is within the serving noise), one when it ends, each resolved after 30 s of quiet."""
    settings = run_settings(kafka_bootstrap)
    lines = gzip.open(SERVING).read().splitlines()
    log_path = tmp_path / "worker.log"
    worker = spawn_worker(settings, log_path)
    try:
        wait_healthy(settings.web_port, worker, log_path)
        assert asyncio.run(replay(lines, settings, speed=0)) == {"inference": 0, "gpu": 1650}
        done = lambda alerts: sum(a.status == "firing" for a in alerts) >= 3 and sum(a.status == "resolved" for a in alerts) >= 2  # noqa: E731
        alerts = read_alerts(settings, done, timeout=120.0, settle=2.0)
        t0 = min(a.starts_at for a in alerts) - 60.1  # serving began 60.1 s into the trace
        firing = [(round(a.starts_at - t0, 1), a.severity, a.statistic) for a in alerts if a.status == "firing"]
        assert firing == [(60.1, "warning", "multivariate"), (181.4, "warning", "multivariate"), (300.4, "warning", "multivariate")], worker_log(log_path)
        assert [round(a.starts_at - t0, 1) for a in alerts if a.status == "resolved"][:2] == [60.1, 181.4]
    finally:
        stop_worker(worker)
