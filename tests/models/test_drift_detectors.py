"""Focused tests: MissingRate, CategoricalDrift, PredictionDrift, MultivariateDrift, ConfidenceDrift."""

from __future__ import annotations

import numpy as np
import pytest

from models.drift import (
    CategoricalDrift,
    ConfidenceDrift,
    MissingRate,
    MultivariateDrift,
    PredictionDrift,
    entropy,
)


# -- MissingRate ------------------------------------------------------------------
def test_missing_rate_feature_never_missing_in_warmup():
    xs = np.random.default_rng(0).normal(size=(6000, 1))
    xs[4000::50] = np.nan  # 2 % missing after the warm-up
    det = MissingRate(warmup=2000)
    fired = det.update_many(xs)
    assert fired.size and fired[0] < 4600
    d = det.evidence()["last_alarm"]["detail"][0]
    assert d["reference_rate"] == 0.0 and d["recent_rate"] > 0.0


def test_missing_rate_quiet_at_reference_rate():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(40_000, 5))
    xs[rng.random(xs.shape) < 0.1] = np.nan
    assert MissingRate(warmup=5000).update_many(xs).size == 0


# -- CategoricalDrift ------------------------------------------------------------
def test_categorical_unseen_and_missing():
    rng = np.random.default_rng(2)
    values = list(rng.choice(["x", "y"], 3000)) + [None, float("nan")] * 10 + ["new"] * 3 + list(rng.choice(["x", "y"], 500))
    det = CategoricalDrift(warmup=1000, window=200)
    det.update_many(values)
    ev = det.evidence()
    assert ev["unseen"] == {"count": 3, "top": ["new"]}
    assert det.n_events == 3503


def test_categorical_new_dominant_category_fires():
    rng = np.random.default_rng(3)
    values = list(rng.choice(["x", "y"], 2000)) + ["z"] * 300
    det = CategoricalDrift(warmup=1000, window=200, stride=20)
    fired = det.update_many(values)
    assert fired.size and fired[0] < 2060
    assert det.evidence()["last_alarm"]["recent_shares"]["__other__"] > 0


def test_categorical_rare_categories_pooled():
    det = CategoricalDrift(warmup=1000, window=100)
    det.update_many(["a"] * 600 + ["b"] * 397 + ["r1", "r2", "r3"])
    assert det._labels == ["a", "b", "__other__"]


def test_prediction_drift_is_categorical():
    assert PredictionDrift.name == "prediction_drift"
    assert issubclass(PredictionDrift, CategoricalDrift)


def test_categorical_reset():
    det = CategoricalDrift(warmup=100, window=50)
    det.update_many(["a", "b"] * 100)
    det.reset()
    assert det.phase == "monitoring" and not det.fired


# -- MultivariateDrift -----------------------------------------------------------
def test_multivariate_quiet_without_change():
    rng = np.random.default_rng(4)
    cov = np.full((16, 16), 0.3) + 0.7 * np.eye(16)
    xs = rng.multivariate_normal(np.zeros(16), cov, 40_000)
    assert MultivariateDrift(warmup=5000).update_many(xs).size == 0


def test_multivariate_needs_warmup_longer_than_features():
    det = MultivariateDrift(warmup=100)
    with pytest.raises(ValueError, match="too short"):
        det.update_many(np.zeros((100, 95)))


def test_multivariate_evidence_top_features():
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(4000, 6))
    xs[2500:, 3] += 0.8
    det = MultivariateDrift(warmup=1000, features=tuple("abcdef"))
    det.update_many(xs)
    alarm = det.evidence()["last_alarm"]
    assert alarm is not None
    if alarm["component"] == "mean(chi2)":
        assert next(iter(alarm["top_features"])) == "d"


# -- ConfidenceDrift -------------------------------------------------------------
def test_entropy():
    assert entropy([1.0]) == 0.0
    assert entropy([0.25] * 4) == pytest.approx(np.log(4))
    assert np.isnan(entropy([])) and np.isnan(entropy([-1.0, 2.0]))


def test_confidence_accepts_scalars_and_vectors():
    det = ConfidenceDrift(warmup=100)
    det.update(0.9)
    det.update([0.7, 0.2, 0.1])
    det.update(None)
    det.update(1.7)  # out of range: missing
    assert det.n_events == 4
    assert det._buf[1].tolist() == [pytest.approx(0.7), pytest.approx(entropy([0.7, 0.2, 0.1]))]
    assert np.isnan(det._buf[0, 1]) and np.isnan(det._buf[3, 0])


# -- lifecycle shared by the warm-up detectors ----------------------------------
@pytest.mark.parametrize("make", [lambda: MissingRate(warmup=200), lambda: MultivariateDrift(warmup=200)])
def test_freeze_relearn_learn_reference(make):
    rng = np.random.default_rng(6)
    det = make()
    det.update_many(rng.normal(size=(50, 3)))
    det.freeze()
    assert det.phase == "monitoring"
    det.relearn()
    assert det.phase == "learning" and det.n_events == 0
    det.learn_reference(rng.normal(size=(300, 3)))
    assert det.phase == "monitoring"
    det.update_many(rng.normal(size=(100, 3)))
    det.reset()
    assert det.score == 0.0


def test_categorical_learn_reference_and_freeze():
    det = CategoricalDrift(warmup=5000, window=50)
    det.update_many(["a", "b"] * 30)
    det.freeze()
    assert det.phase == "monitoring"
    det.learn_reference(["x"] * 100 + ["y"] * 100)
    assert det._labels == ["x", "y", "__other__"]
