"""The pieces the anomaly thresholds rest on: CUSUM ARL and conformal p-values."""

from __future__ import annotations

import numpy as np
import pytest

from models.anomaly.conformal import ConformalReference
from models.anomaly.cusum_calibration import cusum_arl, cusum_threshold


def _simulated_arl(k: float, h: float, runs: int = 4000, seed: int = 0) -> float:
    """Mean run length of many CUSUMs of Exp(1) - k, stepped in parallel (vectorised)."""
    rng = np.random.default_rng(seed)
    s = np.zeros(runs)
    length = np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    t = 0
    while alive.any():
        t += 1
        s[alive] = np.maximum(0.0, s[alive] + rng.exponential(size=alive.sum()) - k)
        done = alive & (s >= h)
        length[done] = t
        alive &= ~done
    return float(length.mean())


@pytest.mark.parametrize("k", [1.5, 2.0, 4.0])
def test_markov_chain_arl_matches_simulation(k):
    h = cusum_threshold(k, 300.0)
    sim = _simulated_arl(k, h)
    assert sim == pytest.approx(300.0, rel=0.08)
    assert cusum_arl(k, h) == pytest.approx(300.0, rel=1e-3)


def test_threshold_grows_with_arl_and_shrinks_with_k():
    assert cusum_threshold(2.0, 1e6) > cusum_threshold(2.0, 1e4)
    assert cusum_threshold(4.0, 1e6) < cusum_threshold(2.0, 1e6)


@pytest.mark.parametrize("k, arl", [(0.0, 10.0), (2.0, 1.0), (-1.0, 100.0)])
def test_bad_calibration_inputs(k, arl):
    with pytest.raises(ValueError):
        cusum_threshold(k, arl)


@pytest.mark.parametrize("side", ["upper", "lower", "two-sided"])
def test_conformal_p_values_are_uniform_on_heavy_tails(side):
    rng = np.random.default_rng(1)
    x = np.log(10.0 * (1.0 + rng.pareto(1.2, 30_000)))
    ref = ConformalReference(window=500, tail=16)
    ps = []
    for i, v in enumerate(x):
        if ref.ready:
            ps.append(ref.p_value(float(v), side, float(rng.random())))
        ref.add(float(v))
    ps = np.asarray(ps)
    for a in (0.5, 0.1, 0.01):
        assert np.mean(ps <= a) == pytest.approx(a, rel=0.2)
    # Beyond the window's range the estimated tail is conservative (very much so for the
    # short lower tail of this distribution): valid, never liberal.
    for a in (0.002, 0.0005):
        assert np.mean(ps <= a) <= 1.3 * a


def test_tail_extrapolation_beyond_the_window():
    ref = ConformalReference(window=1000, tail=32)
    for v in np.random.default_rng(2).exponential(1.0, 1000):
        ref.add(float(v))
    top = ref.values()[-1]
    p1, p2 = ref.p_value(top + 2.0, "upper", 0.5), ref.p_value(top + 8.0, "upper", 0.5)
    assert p2 < p1 < 1.0 / 1001
    # about exp(-d) / (n + 1) for an Exp(1) tail, up to the noise of a 32-point scale estimate
    assert 0.1 * np.exp(-8.0) / 1001 < p2 < 10 * np.exp(-8.0) / 1001
    assert ref.p_value(-5.0, "upper", 0.5) == pytest.approx(1.0, abs=1e-3)


def test_constant_window_uses_scale_floor():
    ref = ConformalReference(window=200, tail=8, min_scale=1.0)
    for _ in range(200):
        ref.add(45.0)
    assert 0.0 < ref.p_value(46.0, "two-sided", 0.5) < 2.0 / 201
    assert ref.p_value(45.0, "two-sided", 0.5) == pytest.approx(1.0)


@pytest.mark.parametrize("side", ["upper", "lower", "two-sided"])
@pytest.mark.parametrize("kind", ["integer", "continuous", "binary"])
def test_mean_surprisal_is_the_draws_average(side, kind):
    rng = np.random.default_rng(3)
    gen = {
        "integer": lambda: rng.integers(0, 6, 300).astype(float),
        "continuous": lambda: rng.normal(size=300),
        "binary": lambda: rng.integers(0, 2, 300).astype(float),
    }[kind]
    ref = ConformalReference(window=300, tail=8, min_scale=1e-3)
    for v in gen():
        ref.add(float(v))
    vals = ref.values()
    us = (np.arange(4000) + 0.5) / 4000
    for y in [vals[0], vals[-1], vals[150], vals[-1] + 0.5, vals[0] - 0.7, vals[150] + 1e-6]:
        drawn = np.mean([min(50.0, -np.log(ref.p_value(y, side, float(u)))) for u in us])
        assert ref.mean_surprisal(y, side, cap=50.0) == pytest.approx(drawn, abs=1e-3)


def test_mean_surprisal_keeps_mean_one_on_a_quantised_stream():
    rng = np.random.default_rng(4)
    x = rng.poisson(2.0, 20_000).astype(float)
    ref = ConformalReference(window=500, tail=16, min_scale=1e-3)
    s = []
    for v in x:
        if ref.ready:
            s.append(ref.mean_surprisal(float(v), "upper", cap=50.0))
        ref.add(float(v))
    assert np.mean(s) == pytest.approx(1.0, abs=0.05)


def test_tied_extremes_take_at_least_one_step_as_tail_scale():
    ref = ConformalReference(window=200, tail=8, min_scale=1e-3)
    for v in [1.0] * 60 + [2.0] * 80 + [3.0] * 60:
        ref.add(v)
    # one step below the tied minimum: unusual (below all 200), not impossible
    p = ref.p_value(0.0, "lower", 0.5)
    assert 1e-4 < p < 1.0 / 201
    # far beyond still reaches small p-values
    assert ref.p_value(-20.0, "lower", 0.5) < 1e-6
