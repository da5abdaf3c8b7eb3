"""One conformance suite over every detector: drift and (when present) anomaly.

Each package exposes ``CONFORMANCE_CASES``: ``(factory, stream)`` pairs where
``stream(seed)`` is a stream (axis 0 = events) on which the detector fires.
"""

from __future__ import annotations

import copy
import inspect
import json
import pickle
from typing import Any

import numpy as np
import pytest

import models.drift
from models.base import Detector
from models.calibration import FalseAlarmBudget


def _anomaly_cases() -> list[Any]:
    try:
        import models.anomaly as anomaly
    except ModuleNotFoundError as exc:  # the package is being written in parallel
        if exc.name != "models.anomaly":
            raise
        return []
    return list(getattr(anomaly, "CONFORMANCE_CASES", []))


CASES = list(models.drift.CONFORMANCE_CASES) + _anomaly_cases()
IDS = [f"{type(factory()).__name__}-{i}" for i, (factory, _) in enumerate(CASES)]


def _one_by_one(det: Detector, xs: Any) -> np.ndarray:
    fired = []
    for i, x in enumerate(xs):
        det.update(x)
        if det.fired:
            fired.append(i)
    return np.asarray(fired, dtype=np.int64)


@pytest.fixture(params=range(len(CASES)), ids=IDS)
def case(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    return CASES[request.param]


def test_stream_has_an_alarm(case):
    factory, stream = case
    assert factory().update_many(stream(0)).size > 0


def test_update_many_equals_one_by_one(case):
    factory, stream = case
    xs = stream(1)
    a, b = factory(), factory()
    fired_many = a.update_many(xs)
    fired_one = _one_by_one(b, xs)
    np.testing.assert_array_equal(fired_many, fired_one)
    assert a.score == b.score
    assert a.fired == b.fired


def test_update_crossings_is_update_many_with_its_repeats(case):
    factory, stream = case
    xs = stream(1)
    a, b = factory(), factory()
    fired, repeated = a.update_crossings(xs)
    np.testing.assert_array_equal(fired, b.update_many(xs))
    assert (a.score, a.fired) == (b.score, b.fired)
    np.testing.assert_array_equal(a.update_many(stream(2)), b.update_many(stream(2)))  # the same state
    assert not set(fired.tolist()) & set(repeated.tolist())
    c, crossed = factory(), []
    for i, x in enumerate(xs):
        c.update(x)
        if c.crossed and not c.fired:
            crossed.append(i)
    assert repeated.tolist() == crossed


def test_same_seed_same_alarms(case):
    factory, stream = case
    np.testing.assert_array_equal(factory().update_many(stream(2)), factory().update_many(stream(2)))


def test_clone_same_params_fresh_state(case):
    factory, stream = case
    det = factory()
    det.update_many(stream(3))
    twin = det.clone()
    assert type(twin) is type(det)
    assert twin._params() == factory()._params()
    np.testing.assert_array_equal(twin.update_many(stream(4)), factory().update_many(stream(4)))


def test_snapshot_round_trip_preserves_behaviour(case):
    factory, stream = case
    xs = stream(5)
    cut = len(xs) // 2
    det = factory()
    det.update_many(xs[:cut])
    restored = type(det).restore(det.snapshot())
    np.testing.assert_array_equal(restored.update_many(xs[cut:]), det.update_many(xs[cut:]))
    assert restored.score == det.score


def test_restore_rejects_foreign_bytes(case):
    factory, _ = case
    with pytest.raises(ValueError):
        type(factory()).restore(b"not a snapshot")
    with pytest.raises(ValueError):
        type(factory()).restore(pickle.dumps((1, object())))


def test_score_threshold_are_floats_and_evidence_is_json(case):
    factory, stream = case
    det = factory()
    assert isinstance(det.score, float) and isinstance(det.threshold, float)
    det.update_many(stream(6))
    assert isinstance(det.score, float) and isinstance(det.threshold, float)
    assert isinstance(det.fired, bool)
    json.dumps(det.evidence())


def _learned_at(det: Detector) -> list[int]:
    """Events after which to rebudget: none, and (a drift detector) its warm-up's end, before any alarm."""
    return [0, det.warmup] if hasattr(det, "relearn") else [0]


def test_rebudget_holds_what_a_detector_built_with_that_budget_holds(case):
    factory, stream = case
    xs, loose = stream(7), FalseAlarmBudget(5000.0)
    for cut in _learned_at(factory()):
        det, built, same = factory(), type(factory())(**{**copy.deepcopy(factory()._params()), "budget": loose}), factory()
        for d in (det, built, same):
            d.update_many(xs[:cut])
        det.rebudget(loose)
        assert det.budget == loose
        assert pickle.dumps(det) == pickle.dumps(built), f"after {cut} events"
        assert pickle.dumps(det) != pickle.dumps(same), "the budget sets some threshold"
        np.testing.assert_array_equal(det.update_many(xs[cut:]), built.update_many(xs[cut:]))
        assert det.threshold == built.threshold and det.score == built.score


def test_rebudget_keeps_the_reference_and_rejects_a_non_budget(case):
    factory, stream = case
    xs = stream(8)
    det = factory()
    det.update_many(xs[: len(xs) // 2])
    before = pickle.dumps(det)
    det.rebudget(det.budget)  # the same budget: nothing changes
    assert pickle.dumps(det) == before
    with pytest.raises(ValueError, match="budget"):
        det.rebudget(5.0)  # type: ignore[arg-type]


def _bad_values(default: Any) -> list[Any]:
    if isinstance(default, bool) or default is None:
        return []
    if isinstance(default, (int, float)):
        return ([-1] if default > 0 else []) + ["x", float("nan")]  # wrong sign, not a number, not finite
    if isinstance(default, tuple):
        return [("bogus",)]
    if isinstance(default, FalseAlarmBudget):
        return ["bogus"]
    return []


def test_bad_parameters_raise_value_error_naming_them(case):
    factory, _ = case
    det = factory()
    sig = inspect.signature(type(det).__init__)
    checked = 0
    for name, param in sig.parameters.items():
        if name == "self" or "seed" in name or param.default is inspect.Parameter.empty:
            continue
        for bad in _bad_values(param.default):
            kwargs = {**det._params(), name: bad}
            with pytest.raises(ValueError, match=name):
                type(det)(**kwargs)
            checked += 1
    assert checked > 0
