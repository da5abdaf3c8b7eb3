"""The service end to end on the real stack: the built-in scenario through a worker.

One run serves every test here: Alertmanager is down while the first alerts
fire and starts only afterwards, so the same run shows that alerts wait in
Kafka and are all delivered later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from streams.backtest import run as backtest
from streams.localstack import LocalAlertmanager, WebhookRecorder, free_port
from streams.records import Alert
from streams.scenario import Scenario, builtin
from streams.worker import spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import KSERVE_REQUEST, KSERVE_RESPONSE, kserve_half, metrics_text, produce, read_alerts, replay_messages, run_settings, worker_log

pytestmark = pytest.mark.integration


@dataclass
class Run:
    scenario: Scenario
    alerts: list[Alert]
    webhook: WebhookRecorder
    alertmanager: LocalAlertmanager
    metrics: str
    settings: object


def _complete(alerts: list[Alert]) -> bool:
    firing = {a.fingerprint for a in alerts if a.status == "firing"}
    resolved = {a.fingerprint for a in alerts if a.status == "resolved"}
    return len(firing) >= 2 and firing <= resolved


KSERVE_MODEL = "kserve-fraud"


def _kserve_messages() -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """KServe payload-logger CloudEvents (binary mode): a request of two rows and its response (two
    events of ``KSERVE_MODEL``), then one request sent twice under one id (the first copy is dropped
    unjoined and dead-lettered, the second waits for a response that never comes, and the worker's
    timer lets it go unjoined ``kserve_join_ttl_seconds`` later though no KServe half follows), then a
    request of two rows whose response has one (both dead-lettered as bad_tensor)."""

    def half(kind: str, ce_id: str, body: dict, time: str) -> tuple[bytes, list[tuple[str, bytes]]]:
        return kserve_half(kind, ce_id, KSERVE_MODEL, body, time)

    request, response = KSERVE_REQUEST, KSERVE_RESPONSE
    return [
        half("request", "k1", request, "2023-11-14T22:13:20.000Z"),
        half("response", "k1", response, "2023-11-14T22:13:20.025Z"),
        half("request", "k2", request, "2023-11-14T22:13:21.000Z"),
        half("request", "k2", request, "2023-11-14T22:13:21.000Z"),
        half("request", "k3", request, "2023-11-14T22:13:22.000Z"),
        half("response", "k3", {"outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [1]}]}, "2023-11-14T22:13:22.010Z"),
    ]


@pytest.fixture(scope="module")
def service_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("service")
    webhook = WebhookRecorder()
    webhook.start()
    alertmanager = LocalAlertmanager(tmp / "alertmanager", port=free_port(), webhook_url=webhook.url)
    # The scenario's replay after the KServe messages takes over 20 s: a waiting half expires meanwhile.
    settings = run_settings(kafka_bootstrap, alertmanager.address, kserve_join_ttl_seconds=10.0)
    scenario = builtin(rate=20.0)
    log = tmp / "worker.log"
    worker = spawn_worker(settings, log)
    try:
        wait_healthy(settings.web_port, worker, log)
        produce(settings, settings.inference_topic, KSERVE_MODEL.encode(), _kserve_messages())
        replay_messages(scenario.messages(), settings, speed=20.0)
        read_alerts(settings, lambda alerts: any(a.status == "firing" for a in alerts), settle=4.0)
        alertmanager.start()  # down until now: the first alerts had to wait in Kafka
        alerts = read_alerts(settings, _complete, timeout=180.0, settle=5.0)
        wanted = {(a.fingerprint, "resolved") for a in alerts if a.status == "firing"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not wanted <= _statuses(webhook):
            time.sleep(0.5)
        yield Run(scenario, alerts, webhook, alertmanager, metrics_text(settings.web_port), settings)
    except Exception:
        print(worker_log(log))
        raise
    finally:
        stop_worker(worker)
        alertmanager.stop()
        webhook.stop()


def _statuses(webhook: WebhookRecorder) -> set[tuple[str | None, str]]:
    """(fingerprint, status) of every alert the webhook was notified of."""
    return {(a.get("annotations", {}).get("fingerprint"), a["status"]) for p in webhook.received for a in p.get("alerts", [])}


def _fp(payload: dict) -> str | None:
    alerts = payload.get("alerts") or [{}]
    return alerts[0].get("annotations", {}).get("fingerprint")


def _firing_in(run: Run, start: float, end: float) -> list[Alert]:
    lo, hi = run.scenario.at(start), run.scenario.at(end)
    return [a for a in run.alerts if a.status == "firing" and lo <= a.starts_at <= hi]


def test_input_drift_gives_exactly_one_alert(service_run: Run) -> None:
    drift = service_run.scenario.incidents[0]
    alerts = _firing_in(service_run, drift.start - 5, drift.end)
    assert [(a.kind, a.model, a.feature, a.severity) for a in alerts] == [("input_drift", "fraud-detector", "x1", "warning")]
    assert alerts[0].starts_at - service_run.scenario.at(drift.start) < 10  # seconds of event time
    assert alerts[0].evidence["reference"]["mean"] < alerts[0].evidence["recent"]["mean"]


def test_gpu_contention_gives_one_correlated_alert_with_gpu_context(service_run: Run) -> None:
    contention = service_run.scenario.incidents[1]
    alerts = _firing_in(service_run, contention.start - 5, contention.end)
    assert [(a.kind, a.model, a.host, a.severity) for a in alerts] == [("correlated", "churn-ranker", "gpu-node-2", "critical")]
    context = alerts[0].gpu_context
    assert {(row["host"], row["gpu"]) for row in context} == {("gpu-node-2", "0"), ("gpu-node-2", "1")}
    assert all(row["util_pct"] > 90 for row in context)
    assert all(row["window"]["util_pct"][2] > 90 and row["window"]["samples"] >= 10 for row in context)  # the last 60 s
    assert alerts[0].evidence["model_side"] == "latency_anomaly"
    assert alerts[0].dashboard_url.startswith("http://grafana.test/d/inferwatch-model?")


def test_every_alert_resolves_after_its_incident_and_the_quiet_period_is_quiet(service_run: Run) -> None:
    firing = [a for a in service_run.alerts if a.status == "firing"]
    resolved = {a.fingerprint: a for a in service_run.alerts if a.status == "resolved"}
    assert len(firing) == 2 and set(resolved) == {a.fingerprint for a in firing}
    for incident in service_run.scenario.incidents:
        (alert,) = _firing_in(service_run, incident.start - 5, incident.end)
        assert resolved[alert.fingerprint].ends_at >= service_run.scenario.at(incident.end)
    quiet_from = max(i.end for i in service_run.scenario.incidents) + 5
    assert _firing_in(service_run, quiet_from, service_run.scenario.seconds) == []


def test_alerts_reach_alertmanager_after_it_comes_back(service_run: Run) -> None:
    received = [p for p in service_run.webhook.received if _fp(p)]
    fingerprints = {a.fingerprint for a in service_run.alerts if a.status == "firing"}
    assert {_fp(p) for p in received} >= fingerprints
    labels = [p["alerts"][0]["labels"] for p in received]
    assert {(lab["kind"], lab["model"], lab["severity"]) for lab in labels} >= {
        ("input_drift", "fraud-detector", "warning"), ("correlated", "churn-ranker", "critical")
    }
    statuses = _statuses(service_run.webhook)
    assert {(fp, "firing") for fp in fingerprints} <= statuses
    assert {(fp, "resolved") for fp in fingerprints} <= statuses


def test_metrics_expose_the_families_with_join_labels(service_run: Run) -> None:
    text = service_run.metrics
    for family in ("inferwatch_events_total", "inferwatch_dead_letters_total", "inferwatch_inference_latency_seconds_bucket",
                   "inferwatch_drift_score", "inferwatch_gpu_utilization_ratio", "inferwatch_model_gpu_info",
                   "inferwatch_alerts_total", "inferwatch_consumer_lag_messages", "inferwatch_alertmanager_delivery_failures_total"):
        assert family in text, family
    assert 'inferwatch_model_gpu_info{gpu="0",host="gpu-node-2",model="churn-ranker"' in text
    assert 'reason="not_json"' in text


def test_kserve_cloudevents_are_joined_and_unjoined_halves_counted(service_run: Run) -> None:
    text = service_run.metrics
    assert re.search(rf'^inferwatch_events_total\{{model="{KSERVE_MODEL}",version="[^"]*"\}} 2\.0$', text, re.M), "two joined rows"
    assert re.search(r"^inferwatch_kserve_halves_dropped_total 2\.0$", text, re.M)
    assert re.search(r"^inferwatch_kserve_halves_pending 0\.0$", text, re.M)
    topic = re.escape(service_run.settings.inference_topic)
    # the request sent twice: its first copy is dead-lettered as unjoined when the second comes, the
    # second by the worker's timer once it has waited 10 s (no KServe half followed it)
    assert re.search(rf'^inferwatch_dead_letters_total\{{reason="unjoined",topic="{topic}"\}} 2\.0$', text, re.M)
    # a pair that cannot be joined: the request, consumed first, is dead-lettered with the response
    assert re.search(rf'^inferwatch_dead_letters_total\{{reason="bad_tensor",topic="{topic}"\}} 2\.0$', text, re.M)


def test_backtest_raises_the_same_alerts_as_the_stream(service_run: Run) -> None:
    result = backtest(((m.topic, m.value) for m in service_run.scenario.messages()), service_run.settings)  # type: ignore[arg-type]
    key = lambda a: (a.status, a.kind, a.model, a.feature, a.host, a.gpu, round(a.starts_at))  # noqa: E731
    assert sorted(map(key, result.alerts)) == sorted(map(key, service_run.alerts))
