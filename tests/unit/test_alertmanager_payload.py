"""The evidence and GPU context annotations sent to Alertmanager stay whole JSON within their size limit."""

from __future__ import annotations

import json
import random

from streams.alertmanager import _MAX_ANNOTATION, evidence_annotation, gpu_context_annotation, to_payload
from streams.core.detectors import DetectorFactory
from streams.core.gpu_monitor import HostMonitor
from streams.records import Alert
from streams.scenario import _gpu


def rows(gpus: int) -> list[dict]:
    rng = random.Random(0)
    monitor = HostMonitor("node-1", DetectorFactory(gpu_warmup=100), quiet_after=60.0)
    states, _, _ = monitor.process([_gpu(rng, "node-1", g, 1.7e9 + t, False) for t in range(120) for g in range(gpus)])
    return [s.context() for s in states]


def test_a_small_context_is_sent_whole() -> None:
    two = rows(2)
    assert json.loads(gpu_context_annotation(two)) == json.loads(json.dumps(two))


def test_eight_gpus_lose_their_window_summaries_before_any_row() -> None:
    eight = rows(8)
    assert len(json.dumps(eight)) > _MAX_ANNOTATION  # about 4,500 characters with the summaries
    text = gpu_context_annotation(eight)
    sent = json.loads(text)
    assert len(text) <= _MAX_ANNOTATION and len(sent) == 8
    assert all("window" not in row and row["util_pct"] == full["util_pct"] for row, full in zip(sent, eight, strict=True))


def test_many_gpus_keep_the_first_rows_that_fit_and_count_the_rest() -> None:
    many = rows(40)
    text = gpu_context_annotation(many)
    sent = json.loads(text)
    assert len(text) <= _MAX_ANNOTATION
    assert sent[-1] == {"more_gpus": 40 - (len(sent) - 1)} and len(sent) > 5
    assert [row["gpu"] for row in sent[:-1]] == [row["gpu"] for row in many[: len(sent) - 1]]


def test_the_payload_uses_it() -> None:
    alert = Alert(fingerprint="f", kind="correlated", status="firing", severity="critical", model="m", score=2.0, threshold=1.0,
                  starts_at=1.7e9, gpu_context=rows(8))
    payload = to_payload(alert, now=1.7e9 + 10, ttl=300.0)
    assert len(json.loads(payload["annotations"]["gpu_context"])) == 8


def test_long_evidence_leaves_out_its_largest_entries_and_names_them() -> None:
    evidence = {"score": 3.2, "component": "location", "last_alarm": {"detail": [{"feature": f"f{i}", "z": i} for i in range(400)]},
                "reference": {"mean": 1.0}, "recent": {"mean": 2.0}}
    text = evidence_annotation(evidence)
    sent = json.loads(text)
    assert len(text) <= _MAX_ANNOTATION
    assert sent == {"score": 3.2, "component": "location", "reference": {"mean": 1.0}, "recent": {"mean": 2.0}, "omitted": ["last_alarm"]}
    assert json.loads(evidence_annotation({"score": 1.0})) == {"score": 1.0}
    assert json.loads(evidence_annotation({"k" * 5000: 1})) == {"omitted_entries": 1}
