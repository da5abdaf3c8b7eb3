"""A worker killed mid-incident: its successor resumes from the changelog and alerts once."""

from __future__ import annotations

import re

import pytest

from streams.records import Alert
from streams.scenario import builtin
from streams.worker import spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import metrics_text, read_alerts, replay_messages, run_settings, split, worker_log

pytestmark = pytest.mark.integration


def _firing(alerts: list[Alert], kind: str) -> list[Alert]:
    return [a for a in alerts if a.status == "firing" and a.kind == kind]


def test_killed_worker_is_replaced_and_the_straddling_incident_alerts_once(kafka_bootstrap: str, tmp_path) -> None:
    settings = run_settings(kafka_bootstrap)
    scenario = builtin(rate=20.0)
    contention = scenario.incidents[1]
    before, after = split(scenario, contention.start + 25)  # cut in the middle of the GPU contention
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"

    first = spawn_worker(settings, log_a)
    try:
        wait_healthy(settings.web_port, first, log_a)
        replay_messages(before, settings, speed=20.0)
        read_alerts(settings, lambda alerts: bool(_firing(alerts, "correlated")), settle=3.0)
    finally:
        first.kill()  # a crash: no clean shutdown, no final commit
        first.wait()

    second = spawn_worker(settings, log_b)
    try:
        wait_healthy(settings.web_port, second, log_b)
        replay_messages(after, settings, speed=20.0)

        def done(alerts: list[Alert]) -> bool:
            firing = {a.fingerprint for a in alerts if a.status == "firing"}
            return len(firing) >= 2 and firing <= {a.fingerprint for a in alerts if a.status == "resolved"}

        alerts = read_alerts(settings, done, timeout=180.0, settle=5.0)
        text = metrics_text(settings.web_port)
    except Exception:
        print(worker_log(log_a), worker_log(log_b))
        raise
    finally:
        stop_worker(second)

    assert [(a.model, a.host) for a in _firing(alerts, "correlated")] == [("churn-ranker", "gpu-node-2")]
    assert [(a.model, a.feature) for a in _firing(alerts, "input_drift")] == [("fraud-detector", "x1")]
    assert _firing(alerts, "latency_anomaly") == [] and _firing(alerts, "gpu_anomaly") == []
    resolved = [a for a in alerts if a.status == "resolved"]
    assert sorted(a.kind for a in resolved) == ["correlated", "input_drift"]
    (end,) = [a.ends_at for a in resolved if a.kind == "correlated"]
    assert end >= scenario.at(contention.end)
    restored = dict(re.findall(r'inferwatch_state_restored_total\{kind="(\w+)"\} ([0-9.]+)', text))
    assert float(restored.get("model", 0)) >= 2 and float(restored.get("host", 0)) >= 2, restored
