"""The worker's latency detectors learn for ``INFERWATCH_WARMUP_EVENTS`` events per model version and host before they alarm."""

from __future__ import annotations

import time

import numpy as np

from streams.core import Engine
from streams.records import InferenceEvent
from streams.settings import Settings

T0 = 1_700_000_000.0


def _latency_alert_starts(warmup: int) -> list[float]:
    rng = np.random.default_rng(5)
    latency = rng.lognormal(3.0, 0.3, 2500)
    latency[300] *= 40.0  # within a warm-up of 1,000
    latency[1500] *= 40.0  # after it
    events = [InferenceEvent(ts=T0 + i, model="ranker", latency_ms=float(v), host="h1") for i, v in enumerate(latency)]
    engine = Engine(Settings(warmup_events=warmup))
    alerts = [a for i in range(0, len(events), 250) for a in engine.on_events(events[i : i + 250]).alerts]
    alerts += engine.tick(time.time() + 3600.0).alerts  # settles what the correlation grace held
    detector = engine.models["ranker"].latency[("unknown", "h1")]
    assert detector.warmup == warmup
    return sorted({a.starts_at for a in alerts if a.kind == "latency_anomaly" and a.status == "firing"})


def test_a_latency_spike_within_the_warmup_is_learned_not_raised() -> None:
    assert _latency_alert_starts(1000) == [T0 + 1500]
    assert _latency_alert_starts(100) == [T0 + 300, T0 + 1500]
