"""Golden tests: exact alarm positions on seeded streams with a known change.

A change in these numbers means the detectors' behaviour changed: check the
benchmark before updating them.
"""

from __future__ import annotations

import numpy as np

from models.drift import CategoricalDrift, ConfidenceDrift, MissingRate, MultivariateDrift, NumericDrift


def first_alarm_per_feature(det, xs) -> dict[int, int]:
    rows = det.update_many(xs)
    first: dict[int, int] = {}
    for row, feats in zip(rows, det.fired_features, strict=True):
        for f in feats:
            first.setdefault(int(f), int(row))
    return first


def test_numeric_mean_variance_shape():
    rng = np.random.default_rng(42)
    xs = rng.normal(size=(4000, 3))
    xs[2000:, 0] += 0.5  # mean +0.5 sd at 2000
    xs[2500:, 1] *= np.sqrt(2)  # variance x2 at 2500
    xs[2000:, 2] = rng.laplace(0, 1 / np.sqrt(2), 2000)  # Laplace, same mean and variance, at 2000
    assert first_alarm_per_feature(NumericDrift(warmup=1000), xs) == {0: 2122, 2: 2305, 1: 2648}


def test_numeric_evidence_names_component():
    rng = np.random.default_rng(42)
    xs = rng.normal(size=(4000, 3))
    xs[2000:, 0] += 0.5
    det = NumericDrift(warmup=1000, features=("a", "b", "c"))
    det.update_many(xs[:2123])
    alarm = det.evidence()["last_alarm"]
    assert alarm["event"] == 2122 and alarm["features"] == ["a"]
    assert alarm["detail"][0]["component"].startswith("location_up")


def test_missing_rate():
    rng = np.random.default_rng(43)
    xs = rng.normal(size=(6000, 2))
    rates = np.where(np.arange(6000)[:, None] < 3000, [0.0, 0.05], [0.01, 0.1])
    xs[rng.random((6000, 2)) < rates] = np.nan
    assert first_alarm_per_feature(MissingRate(warmup=1000), xs) == {1: 3639, 0: 3630}


def test_categorical():
    rng = np.random.default_rng(44)
    before = rng.choice(list("abcd"), 3000, p=[0.4, 0.3, 0.2, 0.1])
    after = rng.choice(list("abcd"), 2000, p=[0.3, 0.3, 0.2, 0.2])
    stream = list(before) + list(after)
    assert CategoricalDrift(warmup=1000, windows=(200,), stride=50).update_many(stream)[:3].tolist() == [3149, 3339, 3349]
    assert CategoricalDrift(warmup=1000, windows=(100, 200, 400, 800)).update_many(stream)[:3].tolist() == [3159, 3339, 3399]


def test_multivariate_shift_spread_over_features():
    rng = np.random.default_rng(45)
    cov = np.full((8, 8), 0.5) + 0.5 * np.eye(8)
    xs = rng.multivariate_normal(np.zeros(8), cov, 5000)
    xs[3000:] += 0.3
    assert MultivariateDrift(warmup=1000).update_many(xs)[:3].tolist() == [3199, 3399, 3999]


def test_confidence_and_entropy():
    rng = np.random.default_rng(46)
    logits = rng.normal(size=(5000, 3)) * np.where(np.arange(5000)[:, None] < 3000, 2.0, 1.5)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    assert first_alarm_per_feature(ConfidenceDrift(warmup=1000), p) == {1: 3235, 0: 3421}
