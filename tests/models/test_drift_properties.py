"""Property-based tests (hypothesis): missing values, monotone scores, batch = one by one."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.drift import CategoricalDrift, MissingRate, NumericDrift
from models.drift._reference import Z_CLIP, NormalScores

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@FAST
@given(sample=arrays(float, (200, 1), elements=finite), probe=arrays(float, 30, elements=finite))
def test_normal_scores_monotone_and_bounded(sample, probe):
    ref = NormalScores(sample)
    z = ref.transform(np.sort(probe)[:, None])[:, 0]
    if ref.usable[0]:
        assert np.all(np.diff(z) >= -1e-12)
        assert np.all(np.abs(z) <= Z_CLIP)
    else:
        assert np.all(np.isnan(z))


@FAST
@given(
    seed=st.integers(0, 2**16),
    nan_rows=st.lists(st.integers(0, 399), max_size=30, unique=True),
)
def test_inserting_missing_rows_does_not_change_cusum_alarms(seed, nan_rows):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(400, 2))
    xs[250:, 0] += 1.5
    # shape windows longer than the stream: only the CUSUMs, which skip missing values, act
    plain = NumericDrift(warmup=100, windows=(10_000,))
    fired_plain = plain.update_many(xs)
    # all-NaN rows after the warm-up: they must not move any statistic
    rows = sorted(r for r in nan_rows if r >= 100)
    padded = np.insert(xs, rows, np.nan, axis=0)
    holey = NumericDrift(warmup=100, windows=(10_000,))
    fired_holey = holey.update_many(padded)
    kept = np.flatnonzero(~np.isnan(padded[:, 0]))
    np.testing.assert_array_equal(kept[fired_plain], fired_holey)
    assert holey.score == plain.score


@FAST
@given(xs=arrays(float, (300, 3), elements=st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf]))))
def test_numeric_scores_finite_nonnegative(xs):
    det = NumericDrift(warmup=100, windows=(50,))
    det.update_many(xs)
    s = det.scores
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    assert isinstance(det.score, float)


@FAST
@given(mask=arrays(bool, (300, 2)), split=st.integers(0, 300))
def test_missing_rate_batch_split_invariant(mask, split):
    xs = np.where(mask, np.nan, 1.0)
    a, b = MissingRate(warmup=100), MissingRate(warmup=100)
    fa = a.update_many(xs)
    fb = np.concatenate([b.update_many(xs[:split]), split + b.update_many(xs[split:])])
    np.testing.assert_array_equal(fa, fb)
    assert a.score == b.score


@FAST
@given(values=st.lists(st.one_of(st.sampled_from("abc"), st.none()), min_size=100, max_size=400), split=st.integers(0, 400))
def test_categorical_batch_split_invariant(values, split):
    a, b = CategoricalDrift(warmup=50, windows=(20, 40), stride=7), CategoricalDrift(warmup=50, windows=(20, 40), stride=7)
    fa = a.update_many(values)
    fb = np.concatenate([b.update_many(values[:split]), min(split, len(values)) + b.update_many(values[split:])])
    np.testing.assert_array_equal(fa, fb)
    assert a.score == b.score and a.n_events == b.n_events
