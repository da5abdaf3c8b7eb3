"""A daily false-alert budget per model version, spread over its detectors."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from streams.core import Engine
from streams.core.model_budget import HIGHEST_PER_MILLION, LOWEST_PER_MILLION, RateWindow, budget_units, event_rate, per_million, rate_moved
from streams.records import InferenceEvent
from streams.settings import Settings


def _events(n: int, every: float, rng: np.random.Generator, model: str = "fraud") -> list[InferenceEvent]:
    return _arrivals(np.arange(n) * every, rng, model)


def _arrivals(times: np.ndarray, rng: np.random.Generator, model: str = "fraud") -> list[InferenceEvent]:
    """Events of ``model`` at ``times`` (seconds after 1.7e9) from two hosts, with no change."""
    return [
        InferenceEvent(ts=1.7e9 + float(t), model=model, host=f"h{i % 2}", latency_ms=float(rng.lognormal(3.0, 0.3)),
                       features={"a": float(rng.normal()), "b": float(rng.normal()), "c": int(rng.integers(0, 5)), "country": str(rng.choice(["DE", "FR"]))},
                       prediction="ok", confidence=0.9)
        for i, t in enumerate(times)
    ]


def _feed(engine: Engine, events: list[InferenceEvent], batch: int = 500) -> None:
    for i in range(0, len(events), batch):
        engine.on_events(events[i : i + batch])


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


def test_a_rate_window_closes_after_enough_events_and_time() -> None:
    w = RateWindow(events=4, seconds=10.0)
    assert w.add([]) is None
    assert w.add([5.0, 0.0, 2.0]) is None  # out of order: the window runs from 0 to 5
    assert w.add([20.0]) == pytest.approx(3 / 20)  # 4 events, 3 intervals over 20 s
    assert w.add([21.0, 22.0, 23.0, 24.0]) is None  # 4 events over 3 s: not yet 10 s
    assert w.add([31.0]) == pytest.approx(4 / 10)
    assert not rate_moved(10.0, 12.4) and not rate_moved(10.0, 8.1)
    assert rate_moved(10.0, 12.5) and rate_moved(10.0, 8.0) and rate_moved(None, 1.0)


def test_the_daily_budget_follows_a_canary_that_grows_to_full_traffic(caplog: pytest.LogCaptureFixture) -> None:
    # A canary at 1 request/s for 40 minutes, then full traffic at 20/s for 30 minutes (Poisson arrivals).
    rng = np.random.default_rng(5)
    canary = np.cumsum(rng.exponential(1.0, 2400))
    full = canary[-1] + np.cumsum(rng.exponential(1 / 20, 36_000))
    engine = Engine(Settings(false_alerts_per_model_per_day=1.0, warmup_events=500))
    units = budget_units(3, 4, 1, True)
    _feed(engine, _arrivals(canary, rng))
    state = engine.models["fraud"]
    monitor = state.versions["unknown"]
    first = monitor.budget_rate
    assert first == pytest.approx(1.0, rel=0.3)  # the first 100 events' rate; the canary's windows did not move it
    before = monitor.factory.false_alarms_per_million
    assert before == pytest.approx(per_million(1.0, first, units))
    with caplog.at_level(logging.INFO, logger="streams.core"):
        _feed(engine, _arrivals(full, rng))
    assert monitor.budget_rate == pytest.approx(20.0, rel=0.25)  # a window may straddle the ramp: within RATE_CHANGE
    budget = monitor.factory.budget
    assert budget.per_million == pytest.approx(per_million(1.0, monitor.budget_rate, units))
    assert budget.per_million < before / 10  # 20 times the events a day: each detector gets a twentieth
    detectors = [*monitor.detectors(), *state.latency.values()]
    assert len(detectors) == 8 and all(d.budget == budget for d in detectors)
    # In place: the drift references and the latency detectors' learning stay.
    assert all(d.phase == "monitoring" for d in monitor.detectors())
    assert monitor.numeric.n_events == len(canary) + len(full)
    assert sum(d._n for d in state.latency.values()) == len(canary) + len(full)
    assert any(f"(was {first:.3g})" in r.getMessage() for r in caplog.records)


def test_a_monitor_from_before_rate_following_spreads_at_its_next_window() -> None:
    rng = np.random.default_rng(6)
    engine = Engine(Settings(false_alerts_per_model_per_day=1.0, warmup_events=500))
    times = np.cumsum(rng.exponential(1 / 5, 6000))  # 5/s for 20 minutes
    _feed(engine, _arrivals(times[:1000], rng))
    state = engine.models["fraud"]
    old = state.versions["unknown"]
    for name in ("budget_rate", "_rate_window"):
        del old.__dict__[name]
    monitor = state.versions["unknown"] = pickle.loads(pickle.dumps(old))
    assert monitor.budget_rate is None
    _feed(engine, _arrivals(times[1000:], rng))
    assert monitor.budget_rate == pytest.approx(5.0, rel=0.1)
    assert all(d.budget == monitor.factory.budget for d in [*monitor.detectors(), *state.latency.values()])


def test_one_event_with_a_wrong_time_does_not_move_the_budget() -> None:
    rng = np.random.default_rng(8)
    times = np.cumsum(rng.exponential(1 / 5, 15_000))  # 5/s for 50 minutes
    times[4000] -= 86_400.0  # a day early: the window holding it measures a rate 100 times too low
    engine = Engine(Settings(false_alerts_per_model_per_day=1.0, warmup_events=500))
    events = _arrivals(times, rng)
    _feed(engine, events[:1000])
    monitor = engine.models["fraud"].versions["unknown"]
    first, rates = monitor.budget_rate, []
    for i in range(1000, len(events), 500):
        _feed(engine, events[i : i + 500])
        rates.append(monitor.budget_rate)
    assert first == pytest.approx(5.0, rel=0.25) and set(rates) == {first}  # never spread again
    assert monitor.factory.false_alarms_per_million == pytest.approx(per_million(1.0, monitor.budget_rate, budget_units(3, 4, 1, True)))
