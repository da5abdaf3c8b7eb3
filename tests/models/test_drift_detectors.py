"""Focused tests: MissingRate, CategoricalDrift, PredictionDrift, MultivariateDrift, ConfidenceDrift."""

from __future__ import annotations

import copy

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


def test_missing_rate_reference_grows_so_a_warm_up_that_fell_low_does_not_alarm_again_and_again():
    rng = np.random.default_rng(5)
    n = 200_000
    xs = rng.normal(size=(n, 2))
    xs[rng.random(xs.shape) < np.where(np.arange(n) < 2000, 0.005, 0.01)[:, None]] = np.nan  # the warm-up saw half the rate
    grown, frozen = MissingRate(warmup=2000), MissingRate(warmup=2000)
    frozen.update_many(xs[:2000])
    frozen._grow_after = None  # its reference stays the warm-up's, as before it grew
    assert frozen.update_many(xs[2000:]).size >= 10
    assert grown.update_many(xs).size <= 3
    assert grown._ref_n.tolist() == [128_000.0, 128_000.0] and grown._grow_after is None  # 64 warm-ups, then it stays
    assert abs(grown.evidence()["events"] - n) == 0 and np.allclose(grown._p_hat, 0.01, atol=0.0015)


def test_missing_rate_feature_that_alarmed_does_not_learn_the_rise():
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(12_000, 2))
    xs[rng.random(xs.shape) < np.where(np.arange(12_000)[:, None] < 2500, [0.02, 0.02], [0.02, 0.2])] = np.nan
    det = MissingRate(warmup=2000)
    fired = det.update_many(xs[:5000])
    assert fired.size and set(np.concatenate(det.fired_features).tolist()) == {1}
    assert det._ref_n.tolist() == [4000.0, 2000.0]  # grown at 4,000 events for the quiet feature only
    assert det.update_many(xs[5000:]).size  # the rise still alarms


# -- CategoricalDrift ------------------------------------------------------------
def test_categorical_unseen_and_missing():
    rng = np.random.default_rng(2)
    values = list(rng.choice(["x", "y"], 3000)) + [None, float("nan")] * 10 + ["new"] * 3 + list(rng.choice(["x", "y"], 500))
    det = CategoricalDrift(warmup=1000, windows=(100, 200))
    det.update_many(values)
    ev = det.evidence()
    assert ev["unseen"] == {"count": 3, "top": ["new"]}
    assert det.n_events == 3503


def test_categorical_new_dominant_category_fires():
    rng = np.random.default_rng(3)
    values = list(rng.choice(["x", "y"], 2000)) + ["z"] * 300
    det = CategoricalDrift(warmup=1000, windows=(200,), stride=20)
    fired = det.update_many(values)
    assert fired.size and fired[0] < 2060
    alarm = det.evidence()["last_alarm"]
    assert (alarm["categories"] == ["__other__"]) if alarm["test"] == "share_rise" else alarm["recent_shares"]["__other__"] > 0


def test_categorical_rare_categories_pooled():
    det = CategoricalDrift(warmup=1000, windows=(400,))
    det.update_many(["a"] * 600 + ["b"] * 300 + [f"r{i}" for i in range(100)])
    assert det._labels == ["a", "b", "__other__", "__unseen__"]  # 100 rare ones expect 40 values in 400 together


def test_categorical_bins_per_window():
    """A category gets a bin of its own in a window where it expects 5 values; the rest pools."""
    det = CategoricalDrift(warmup=1000, windows=(100, 800))
    det.update_many(["a"] * 600 + ["b"] * 300 + ["c"] * 60 + ["d"] * 40)
    assert det._labels == ["a", "b", "c", "d", "__other__", "__unseen__"]
    assert det._own == [3, 4]  # d: 4 expected in 100 values, 32 in 800
    assert det._refs[0].tolist() == [600.0, 300.0, 60.0, 40.0] and det._refs[1].tolist() == [600.0, 300.0, 60.0, 40.0, 0.0]


def test_categorical_rare_class_calibrated_and_its_rise_seen():
    """A 99 / 1 binary prediction: quiet while the share holds, an alarm when the rare class reaches 5 %."""
    rng = np.random.default_rng(1)
    det = CategoricalDrift()
    quiet = np.where(rng.random(300_000) < 0.01, "fraud", "ok").tolist()
    assert det.update_many(quiet).size == 0
    fired = det.update_many(np.where(rng.random(2000) < 0.05, "fraud", "ok").tolist())
    assert fired.size and fired[0] < 600
    alarm = det.evidence()["last_alarm"]
    assert "fraud" in (alarm["categories"] if alarm["test"] == "share_rise" else alarm["categories_beyond_limits"])


def test_categorical_large_shift_caught_within_a_hundred_values():
    rng = np.random.default_rng(9)
    values = list(rng.choice(["x", "y", "z"], 3000, p=[0.5, 0.3, 0.2])) + list(rng.choice(["x", "y", "z"], 2000, p=[0.2, 0.3, 0.5]))
    one_window = CategoricalDrift(warmup=1000, windows=(800,))
    scales = CategoricalDrift(warmup=1000, windows=(100, 200, 400, 800))
    assert 3000 <= scales.update_many(values)[0] <= one_window.update_many(values)[0] < 3100


def test_categorical_share_rise_alarm_names_the_category():
    rng = np.random.default_rng(10)
    values = list(rng.choice(["x", "y", "z"], 6000, p=[0.6, 0.3, 0.1])) + list(rng.choice(["x", "y", "z"], 3000, p=[0.55, 0.27, 0.18]))
    det = CategoricalDrift()
    fired = det.update_many(values)
    assert fired.size and fired[0] >= 6000
    first = CategoricalDrift()
    first.update_many(values[: fired[0] + 1])
    alarm = first.evidence()["last_alarm"]
    assert alarm["event"] == fired[0] and alarm["test"] == "share_rise" and alarm["categories"] == ["z"]


def test_categorical_bad_windows():
    for kwargs, match in [
        ({"windows": ()}, "windows must be a non-empty tuple of ints >= 20"),
        ({"windows": [100]}, "windows must be a non-empty tuple"),
        ({"windows": (10, 100)}, ">= 20"),
        ({"windows": (100, 6000)}, "the longest window"),
        ({"windows": (100, 200), "stride": 150}, "shortest window=100"),
    ]:
        with pytest.raises(ValueError, match=match):
            CategoricalDrift(**kwargs)


def test_prediction_drift_is_categorical():
    assert PredictionDrift.name == "prediction_drift"
    assert issubclass(PredictionDrift, CategoricalDrift)


def test_categorical_reset():
    det = CategoricalDrift(warmup=100, windows=(50,))
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
    det = CategoricalDrift(warmup=5000, windows=(50,))
    det.update_many(["a", "b"] * 30)
    det.freeze()
    assert det.phase == "monitoring"
    det.learn_reference(["x"] * 100 + ["y"] * 100)
    assert det._labels == ["x", "y", "__other__", "__unseen__"] and det._refs[0].tolist() == [100.0, 100.0, 0.0]


def _old_layout(det: CategoricalDrift, values: list) -> CategoricalDrift:
    """``det`` (one window, fed ``values``) as a CategoricalDrift from before several windows were
    kept: bins for every category expecting 5 values per window, its window's codes in those bins."""
    state = dict(det.__dict__)
    (window,), (stride,) = state.pop("windows"), state.pop("_strides")
    state.update(window=window, _stride=stride)
    if state["phase"] == "monitoring":
        keep = [c for c, k in det._ref_counter.most_common(det.max_categories) if k * window / det._n_ref >= 5]
        index = {c: i for i, c in enumerate(keep)}
        recent = [v for v in values if v is not None][-det._ring.size :] if det._ring.size else []
        state.update(_labels=keep + ["__other__"], _index=index, _ref=None, _crit=None, _since_test=det._count % stride)
        state["_ring"] = np.array([index.get(v, len(keep)) for v in recent], dtype=np.int64)
        for key in ("_own", "_refs", "_limits", "_unseen_crits", "_q_unseen", "_last", "_count"):
            state.pop(key)
    old = object.__new__(CategoricalDrift)
    old.__dict__.update(state)
    return old


@pytest.mark.parametrize("cut", [600, 2930, 3000, 3110])
def test_categorical_snapshot_from_before_several_windows_restores(cut):
    import pickle

    from models.base import SNAPSHOT_VERSION

    rng = np.random.default_rng(12)
    shares = [0.45, 0.3, 0.15, 0.07, 0.03]
    values = list(rng.choice(list("abcde"), 3000, p=shares)) + list(rng.choice(list("abcde"), 2000, p=[0.35, 0.3, 0.15, 0.1, 0.1]))
    det = CategoricalDrift(warmup=1000, windows=(200,), stride=50)
    det.update_many(values[:cut])
    old_layout = _old_layout(det, values[:cut])
    if det.phase == "monitoring":
        assert old_layout._labels == ["a", "b", "c", "d", "e", "__other__"] and det._labels == ["a", "b", "c", "d", "e", "__other__", "__unseen__"]
    old = CategoricalDrift.restore(pickle.dumps((SNAPSHOT_VERSION, old_layout)))
    if det.phase == "monitoring":
        # an old snapshot had no share CUSUMs: the restored detector starts them now, fresh from its
        # reference (their own reference grows from there on)
        det._rises = copy.deepcopy(old._rises)
    assert old.windows == (200,) and old.phase == det.phase
    expected = det.update_many(values[cut:]).tolist()
    assert expected
    assert old.update_many(values[cut:]).tolist() == expected
    assert old.score == det.score and old.evidence() == det.evidence()


def test_categorical_windows_for_a_warmup():
    from models.drift.categorical import DEFAULT_WINDOWS, windows_for

    assert windows_for(5000) == windows_for(1600) == DEFAULT_WINDOWS
    assert windows_for(1000) == (100, 200, 400, 800)
    assert windows_for(60) == (60,)
    assert CategoricalDrift(warmup=1000, windows=windows_for(1000)).windows == (100, 200, 400, 800)


@pytest.mark.parametrize("missing", [("_rises", "_tested"), ("_tested",)])
def test_categorical_snapshot_without_share_cusums_restores_with_fresh_ones(missing):
    import pickle

    from models.base import SNAPSHOT_VERSION

    rng = np.random.default_rng(13)
    values = list(rng.choice(list("abc"), 6000, p=[0.5, 0.3, 0.2])) + list(rng.choice(list("abc"), 3000, p=[0.3, 0.3, 0.4]))
    det = CategoricalDrift()
    det.update_many(values[:5500])
    for key in missing:  # a snapshot from before the share CUSUMs (e7347fc) or the tested bins (5f436aa)
        del det.__dict__[key]
    old = CategoricalDrift.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old._rises is not None and old._rises.score == 0.0
    fresh = CategoricalDrift()
    fresh.update_many(values[:5500])
    fresh._rises.reset()
    assert old.update_many(values[5500:]).tolist() == fresh.update_many(values[5500:]).tolist() != []
