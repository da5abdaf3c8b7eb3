"""Through the real broker: a latency incident whose GPUs turn anomalous after its grace is one
incident: its latency alert resolves as the correlated alert opens, which starts when it did."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.metrics import sample_sum
from streams.records import Alert
from streams.scenario import HOSTS, GpuContention, Scenario
from tests.integration.service_helpers import metrics_text, read_alerts, replay_messages, run_settings, running_worker, wait_for

pytestmark = pytest.mark.integration


def _gpu_samples(port: int) -> float:
    return sample_sum(metrics_text(port), "inferwatch_gpu_samples_total")


def test_gpus_turning_anomalous_after_the_grace_escalate_the_open_latency_alert(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = run_settings(kafka_bootstrap)  # warm-ups of 1,000 events and 100 samples, resolve after 30 s
    contention = GpuContention(host=HOSTS[1], start=150, end=200, gpu_lag=20)
    scenario = Scenario(seconds=230, rate=10.0, incidents=(contention,), malformed=False)
    messages = list(scenario.messages())
    cut = scenario.at(165)
    slow = [m for m in messages if m.ts < cut]  # the slowdown's first 15 s: GPUs still fine
    hot = [m for m in messages if m.ts >= cut and m.topic == "gpu" and m.ts < scenario.at(contention.end)]
    rest = [m for m in messages if m.ts >= cut and m not in hot]
    with running_worker(settings, tmp_path / "worker.log"):
        replay_messages(slow, settings, speed=0)
        is_latency = lambda alerts: any(a.kind == "latency_anomaly" and a.status == "firing" for a in alerts)  # noqa: E731
        assert is_latency(read_alerts(settings, is_latency, timeout=90, settle=0))
        # The GPUs' anomaly reaches the shared GPU state before the model side sees more events.
        samples_before = _gpu_samples(settings.web_port)
        replay_messages(hot, settings, speed=0)
        wait_for("the hot GPU samples", lambda: _gpu_samples(settings.web_port) >= samples_before + len(hot))
        replay_messages(rest, settings, speed=0)

        def done(alerts: list[Alert]) -> bool:
            return any(a.kind == "correlated" and a.status == "resolved" for a in alerts)

        alerts = read_alerts(settings, done, timeout=120, settle=3)
    summary = [(a.status, a.kind, a.model, a.host) for a in alerts]
    assert summary == [
        ("firing", "latency_anomaly", "churn-ranker", HOSTS[1]),
        ("resolved", "latency_anomaly", "churn-ranker", HOSTS[1]),
        ("firing", "correlated", "churn-ranker", HOSTS[1]),
        ("resolved", "correlated", "churn-ranker", HOSTS[1]),
    ], summary
    latency, superseded, correlated, resolved = alerts
    assert cut <= superseded.ends_at < scenario.at(contention.end)  # at the first latency fire that saw the GPUs
    assert superseded.evidence["superseded_by"] == correlated.fingerprint
    assert correlated.evidence["escalated_from"] == [latency.fingerprint]
    assert correlated.starts_at == latency.starts_at and resolved.ends_at >= scenario.at(contention.end)
    assert all(row["window"]["util_pct"][2] > 90 for row in correlated.gpu_context)
