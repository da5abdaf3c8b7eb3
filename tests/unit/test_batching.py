"""Batch shortcuts give what event-by-event code gave: histogram buckets and the feature matrix."""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from streams.core.model_monitor import _matrix
from streams.metrics import LATENCY_BUCKETS, observe_many
from streams.records import InferenceEvent


def _counts(histogram: Histogram) -> list[float]:
    return [b.get() for b in histogram._buckets] + [histogram._sum.get()]


def test_observe_many_counts_like_observe() -> None:
    values = [0.0, 0.001, 0.0011, 0.3, 29.0, 31.0, 1e9, *LATENCY_BUCKETS]
    one = Histogram("one", "", ["m"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry()).labels("a")
    many = Histogram("many", "", ["m"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry()).labels("a")
    for v in values:
        one.observe(v)
    observe_many(many, values)
    observe_many(many, [])
    assert _counts(many) == _counts(one)


def _event(features: dict[str, object]) -> InferenceEvent:
    return InferenceEvent(ts=1.0, model="m", latency_ms=1.0, features=features)  # type: ignore[arg-type]


def test_matrix_fast_path_and_fallback_agree() -> None:
    full = [_event({"a": 1.0, "b": True}), _event({"a": 2, "b": 0.5})]
    gaps = [*full, _event({"a": None}), _event({"a": "x", "b": 3.0})]
    np.testing.assert_array_equal(_matrix(full, ("a", "b")), [[1.0, 1.0], [2.0, 0.5]])
    np.testing.assert_array_equal(_matrix(full, ("b",)), [[1.0], [0.5]])
    np.testing.assert_array_equal(_matrix(gaps, ("a", "b")), [[1.0, 1.0], [2.0, 0.5], [math.nan, math.nan], [math.nan, 3.0]])
