"""The missing-value rate of every monitored feature, categorical ones included."""

from __future__ import annotations

import pickle

import numpy as np

from streams.core import Engine
from streams.core.detectors import DetectorFactory
from streams.core.model_monitor import VersionMonitor
from streams.records import InferenceEvent
from streams.settings import Settings


def _events(n: int, start: int, null_share: float, rng: np.random.Generator) -> list[InferenceEvent]:
    return [
        InferenceEvent(
            ts=1_700_000_000.0 + start + i, model="fraud", latency_ms=20.0,
            features={"amount": float(rng.lognormal(3.0, 0.5)), "country": None if rng.random() < null_share else str(rng.choice(["DE", "FR", "US"]))},
            prediction="ok", confidence=0.9,
        )
        for i in range(n)
    ]


def test_a_categorical_feature_that_starts_arriving_null_raises_input_drift_on_it() -> None:
    rng = np.random.default_rng(1)
    before, after = _events(4000, 0, 0.01, rng), _events(3000, 4000, 0.2, rng)
    engine = Engine(Settings(warmup_events=1000))
    quiet = [a for i in range(0, 4000, 500) for a in engine.on_events(before[i : i + 500]).alerts]
    raised = [a for i in range(0, 3000, 500) for a in engine.on_events(after[i : i + 500]).alerts]
    monitor = engine.models["fraud"].versions["unknown"]
    assert monitor.missing_names == ("amount", "country")
    assert not [a for a in quiet if a.kind == "input_drift"]
    drift = [a for a in raised if a.kind == "input_drift"]
    assert drift and {a.feature for a in drift} == {"country"} and drift[0].statistic.startswith("missing_rate")


def test_a_monitor_saved_before_categorical_missing_rates_goes_on_with_its_numeric_ones() -> None:
    rng = np.random.default_rng(2)
    monitor = VersionMonitor("fraud", "v1", DetectorFactory(warmup=200))
    monitor.process(_events(300, 0, 0.0, rng))
    state = dict(monitor.__dict__)
    del state["missing_names"]
    state["missing"] = DetectorFactory(warmup=200).missing(("amount",))  # as it was: numeric only
    old = VersionMonitor.__new__(VersionMonitor)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.missing_names == ("amount",)
    old.process(_events(500, 300, 0.5, rng))  # no shape mismatch: only the numeric column is fed
    assert old.events == 800
