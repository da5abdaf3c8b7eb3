"""A daily false-alert budget per model version, spread over its detectors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from streams.core import Engine
from streams.core.model_budget import HIGHEST_PER_MILLION, LOWEST_PER_MILLION, budget_units, event_rate, per_million
from streams.records import InferenceEvent
from streams.settings import Settings


def _events(n: int, every: float, rng: np.random.Generator, model: str = "fraud") -> list[InferenceEvent]:
    return [
        InferenceEvent(ts=1.7e9 + i * every, model=model, host=f"h{i % 2}", latency_ms=float(rng.lognormal(3.0, 0.3)),
                       features={"a": float(rng.normal()), "b": float(rng.normal()), "c": int(rng.integers(0, 5)), "country": str(rng.choice(["DE", "FR"]))},
                       prediction="ok", confidence=0.9)
        for i in range(n)
    ]


def test_the_budget_is_the_daily_alerts_over_the_units_at_the_rate() -> None:
    # 2 alerts a day over 10 units at 50 events/s: 4.32 million events a day, 0.2 alerts each, so
    # 0.2 / 4.32 per million events.
    assert per_million(2.0, 50.0, 10) == pytest.approx(0.2 / 4.32)
    assert per_million(1.0, 1e9, 1) == LOWEST_PER_MILLION and per_million(1e6, 1e-6, 1) == HIGHEST_PER_MILLION
    assert budget_units(numeric=3, missing=4, categorical=1, multivariate=True) == 3 + 4 + 1 + 1 + 2 + 1 + 1
    with pytest.raises(ValueError):
        per_million(0.0, 1.0, 1)
    rng = np.random.default_rng(0)
    assert event_rate(_events(101, 0.1, rng)) == pytest.approx(10.0)
    assert event_rate(_events(1, 0.1, rng)) is None and event_rate(_events(5, 0.0, rng)) is None


def test_every_detector_of_a_version_takes_its_share_of_the_daily_budget(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    engine = Engine(Settings(false_alerts_per_model_per_day=1.0, warmup_events=500))
    with caplog.at_level(logging.INFO, logger="streams.core"):
        for i in range(0, 600, 50):  # the first batch makes both hosts' latency detectors before the schema is fixed
            engine.on_events(_events(600, 0.1, rng)[i : i + 50])
    state = engine.models["fraud"]
    monitor = state.versions["unknown"]
    expected = per_million(1.0, 10.0, budget_units(3, 4, 1, True))
    assert monitor.factory.false_alarms_per_million == pytest.approx(expected)
    detectors = [*monitor.detectors(), *state.latency.values()]
    assert len(detectors) == 8 and len(state.latency) == 2
    assert all(d.budget.per_million == pytest.approx(expected) for d in detectors)
    assert any("1 false alerts a day over 13 detector budgets at 10 events/s" in r.getMessage() for r in caplog.records)
    default = Engine(Settings(warmup_events=500))
    default.on_events(_events(200, 0.1, rng, model="churn"))
    assert all(d.budget.per_million == 1.0 for d in [*default.models["churn"].versions["unknown"].detectors(), *default.models["churn"].latency.values()])


def test_first_events_that_span_no_time_keep_the_budget_per_million(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(2)
    engine = Engine(Settings(false_alerts_per_model_per_day=1.0, false_alarms_per_million=3.0))
    with caplog.at_level(logging.WARNING, logger="streams.core"):
        engine.on_events(_events(150, 0.0, rng))
    monitor = engine.models["fraud"].versions["unknown"]
    assert all(d.budget.per_million == 3.0 for d in monitor.detectors())
    assert any("span no time" in r.getMessage() for r in caplog.records)
