"""The detection core on a model whose numeric features are all discrete (booleans, small counts)."""

from __future__ import annotations

import numpy as np

from streams.core import Engine
from streams.records import InferenceEvent
from streams.settings import Settings


def test_a_model_with_only_discrete_features_is_monitored_quietly() -> None:
    # No feature is continuous, so the multivariate detector uses none of them; it used to
    # raise at its first window test, and every batch of such a model was dead-lettered.
    rng = np.random.default_rng(3)
    n = 3000
    flags, counts, rare = rng.random(n) < 0.3, rng.poisson(0.5, n), rng.random(n) < 0.001
    events = [
        InferenceEvent(
            ts=1_700_000_000.0 + i, model="flags-model", latency_ms=float(rng.lognormal(3.0, 0.3)),
            features={"is_new": bool(flags[i]), "retries": int(counts[i]), "vip": bool(rare[i])},
            prediction="ok", confidence=0.9,
        )
        for i in range(n)
    ]
    engine = Engine(Settings(warmup_events=1000))
    out = [engine.on_events(events[i : i + 500]) for i in range(0, n, 500)]
    monitor = engine.models["flags-model"].versions["unknown"]
    assert monitor.numeric_names == ("is_new", "retries", "vip") and monitor.events == n
    assert monitor.multivariate is not None and monitor.multivariate.phase == "monitoring"  # past its warm-up
    assert not [a for o in out for a in o.alerts if a.kind == "input_drift"]
