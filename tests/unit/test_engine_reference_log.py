"""Every change of a model's references is logged: a new version, a reference learned."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from streams.core import Engine
from streams.records import InferenceEvent
from streams.settings import Settings


def test_a_new_version_and_the_end_of_its_warm_up_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    events = [
        InferenceEvent(ts=1.7e9 + i, model="fraud", model_version="v3", latency_ms=20.0,
                       features={"amount": float(rng.normal()), "country": str(rng.choice(["DE", "FR"]))}, prediction="ok", confidence=0.9)
        for i in range(1500)
    ]
    engine = Engine(Settings(warmup_events=1000))
    with caplog.at_level(logging.INFO, logger="streams.core"):
        for i in range(0, 1500, 250):
            engine.on_events(events[i : i + 250])
    lines = [r.getMessage() for r in caplog.records]
    assert [m for m in lines if "first seen" in m] == ["fraud: version v3 first seen; learning its reference from its first 1000 events"]
    (learned,) = [m for m in lines if "reference learned" in m]
    assert learned.startswith("fraud v3: reference learned, monitoring from event ")
    for name in ("numeric_drift", "missing_rate", "categorical_drift[country]", "confidence_drift", "prediction_drift"):
        assert name in learned
