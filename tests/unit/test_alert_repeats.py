"""A crossing a detector holds back as a repeat of its alarm keeps the incident's alert open, and opens none."""

from __future__ import annotations

from streams.core.alerts import AlertTracker
from streams.core.gpu_monitor import GpuState
from streams.core.signals import Signal
from streams.core.triage import Triage


def latency(ts: float, host: str = "node-1") -> Signal:
    return Signal(kind="latency_anomaly", ts=ts, score=1.2, threshold=1.0, statistic="level_shift",
                  model="m", version="v1", host=host, evidence={"kind": "level_shift"})


def test_keep_open_moves_an_open_alerts_quiet_spell_and_opens_nothing() -> None:
    tracker = AlertTracker(30.0)
    first = latency(100.0)
    assert not tracker.keep_open(first.fingerprint, 100.0)  # nothing open: nothing opens
    assert not tracker.open
    tracker.fire(first)
    assert tracker.keep_open(first.fingerprint, 125.0)
    assert tracker.keep_open(first.fingerprint, 110.0)  # an older repeat moves nothing back
    alert = tracker.open[first.fingerprint]
    assert alert.latest.ts == 125.0 and alert.latest.evidence == first.evidence and alert.fires == 1
    assert tracker.tick(150.0) == []  # quiet for 25 s only
    assert [ended for _, ended in tracker.tick(155.0)] == [155.0]


def test_a_repeat_keeps_the_correlated_alert_or_escalates_the_plain_one() -> None:
    triage, tracker = Triage(5.0, 60.0), AlertTracker(30.0)
    quiet = [GpuState(host="node-1", gpu="0", ts=100.0)]
    saturated = [GpuState(host="node-1", gpu="0", ts=140.0, anomalous_since=138.0, last_fired=140.0)]
    assert triage.on_repeat(latency(100.0), tracker, saturated) is None  # no alert open: none opens
    assert not tracker.open
    plain = latency(100.0)
    tracker.fire(plain)
    assert triage.on_repeat(latency(120.0), tracker, quiet) is None  # GPUs fine: the plain alert stays open
    assert tracker.open[plain.fingerprint].latest.ts == 120.0
    escalation = triage.on_repeat(latency(140.0), tracker, saturated)  # its GPUs turned anomalous
    assert escalation is not None and escalation.kind == "correlated" and escalation.ts == 140.0
    assert escalation.evidence["anomalous_gpus"] == ["node-1/0"]
    tracker.fire(escalation)
    assert triage.on_repeat(latency(170.0), tracker, saturated) is None  # the correlated alert goes on
    assert tracker.open[escalation.fingerprint].latest.ts == 170.0
    assert tracker.open[plain.fingerprint].latest.ts == 120.0  # (the caller resolves it as the correlated one opens)
