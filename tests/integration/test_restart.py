"""A worker killed mid-incident: its successor resumes from the changelog and alerts once; a
KServe request waiting for its response when its worker is killed is joined by the successor, and
so is one joined after the last commit (the successor reads the response again)."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from streams.metrics import events_per_model, sample_sum
from streams.records import Alert
from streams.scenario import builtin
from tests.integration.service_helpers import KSERVE_REQUEST, KSERVE_RESPONSE, committed_inference_offset, kserve_half, metrics_text, produce, read_alerts, replay_messages, run_settings, running_worker, split, wait_for

pytestmark = pytest.mark.integration


def _firing(alerts: list[Alert], kind: str) -> list[Alert]:
    return [a for a in alerts if a.status == "firing" and a.kind == kind]


def test_killed_worker_is_replaced_and_the_straddling_incident_alerts_once(kafka_bootstrap: str, tmp_path) -> None:
    settings = run_settings(kafka_bootstrap)
    scenario = builtin(rate=20.0)
    contention = scenario.incidents[1]
    before, after = split(scenario, contention.start + 25)  # cut in the middle of the GPU contention
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"

    with running_worker(settings, log_a, crash=True):
        replay_messages(before, settings, speed=20.0)
        read_alerts(settings, lambda alerts: bool(_firing(alerts, "correlated")), settle=3.0)

    with running_worker(settings, log_b, log_a):
        replay_messages(after, settings, speed=20.0)

        def done(alerts: list[Alert]) -> bool:
            firing = {a.fingerprint for a in alerts if a.status == "firing"}
            return len(firing) >= 2 and firing <= {a.fingerprint for a in alerts if a.status == "resolved"}

        alerts = read_alerts(settings, done, timeout=180.0, settle=5.0)
        text = metrics_text(settings.web_port)

    assert [(a.model, a.host) for a in _firing(alerts, "correlated")] == [("churn-ranker", "gpu-node-2")]
    assert [(a.model, a.feature) for a in _firing(alerts, "input_drift")] == [("fraud-detector", "x1")]
    assert _firing(alerts, "latency_anomaly") == [] and _firing(alerts, "gpu_anomaly") == []
    resolved = [a for a in alerts if a.status == "resolved"]
    assert sorted(a.kind for a in resolved) == ["correlated", "input_drift"]
    (end,) = [a.ends_at for a in resolved if a.kind == "correlated"]
    assert end >= scenario.at(contention.end)
    restored = dict(re.findall(r'inferwatch_state_restored_total\{kind="(\w+)"\} ([0-9.]+)', text))
    assert float(restored.get("model", 0)) >= 2 and float(restored.get("host", 0)) >= 2, restored


def _metric(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_kserve_request_waiting_when_its_worker_is_killed_is_joined_by_its_successor(kafka_bootstrap: str, tmp_path) -> None:
    settings = run_settings(kafka_bootstrap, snapshot_interval_seconds=1.0)
    key = b"kserve-crash"
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"

    with running_worker(settings, log_a, crash=True):
        produce(settings, settings.inference_topic, key, [kserve_half("request", "crash-1", "kserve-crash", KSERVE_REQUEST, "2023-11-14T22:13:20.000Z")])
        # The request's offset is committed: before, its successor never saw it again.
        wait_for("the request's offset to be committed", lambda: committed_inference_offset(settings) >= 1)
        assert _metric(metrics_text(settings.web_port), "inferwatch_kserve_halves_pending") == 1.0

    with running_worker(settings, log_b, log_a):
        produce(settings, settings.inference_topic, key, [kserve_half("response", "crash-1", "kserve-crash", KSERVE_RESPONSE, "2023-11-14T22:13:20.030Z")])
        wait_for("the joined events", lambda: events_per_model(metrics_text(settings.web_port))["kserve-crash"] == 2)
        text = metrics_text(settings.web_port)
    assert _metric(text, 'inferwatch_state_restored_total{kind="kserve_half"}') == 1.0
    assert _metric(text, "inferwatch_kserve_halves_pending") == 0.0
    assert _metric(text, "inferwatch_kserve_halves_dropped_total") == 0.0
    assert sample_sum(text, "inferwatch_dead_letters_total") == 0.0


def test_a_kserve_pair_joined_after_the_last_commit_is_joined_again_after_a_crash(kafka_bootstrap: str, tmp_path) -> None:
    settings = run_settings(kafka_bootstrap, snapshot_interval_seconds=1.0)
    model, key = "kserve-rejoin", b"kserve-rejoin"
    logs = [tmp_path / f"worker-{name}.log" for name in "abc"]
    with running_worker(settings, logs[0]):
        produce(settings, settings.inference_topic, key, [kserve_half("request", "rejoin-1", model, KSERVE_REQUEST, "2023-11-14T22:13:20.000Z")])
        wait_for("the request's offset to be committed", lambda: committed_inference_offset(settings) >= 1)

    # The second worker restores the request and joins it, but persists (so commits) nothing before it is killed.
    unpersisted = dataclasses.replace(settings, snapshot_interval_seconds=600.0)
    with running_worker(unpersisted, logs[1], logs[0], crash=True):
        produce(settings, settings.inference_topic, key, [kserve_half("response", "rejoin-1", model, KSERVE_RESPONSE, "2023-11-14T22:13:20.030Z")])
        wait_for("the joined events", lambda: events_per_model(metrics_text(settings.web_port))[model] == 2)
        time.sleep(2.0)  # what the worker wrote to its tables reaches their changelogs
        assert committed_inference_offset(settings) == 1

    # Before, the request's key was tombstoned when joined: the response read again waited, then went unjoined.
    with running_worker(settings, logs[2], *logs[:2]):
        wait_for("the pair joined again", lambda: events_per_model(metrics_text(settings.web_port))[model] == 2)
        text = metrics_text(settings.web_port)
    assert _metric(text, 'inferwatch_state_restored_total{kind="kserve_half"}') == 1.0
    assert _metric(text, "inferwatch_kserve_halves_pending") == 0.0
    assert _metric(text, "inferwatch_kserve_halves_dropped_total") == 0.0
    assert sample_sum(text, "inferwatch_dead_letters_total") == 0.0
