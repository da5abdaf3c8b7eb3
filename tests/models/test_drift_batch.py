"""Batch paths of the drift detectors: exactly the results of one event at a time.

``update_many`` works on whole batches (closed-form CUSUMs over quantised
increments, window tests planned per batch, table lookups for normal scores);
these tests pin it to the event-by-event definitions, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from models.drift import ConfidenceDrift, MissingRate, MultivariateDrift, NumericDrift, entropy
from models.drift._cusum import BLOCK, CusumPath, blocked, quantize
from models.drift._reference import Z_CLIP, Z_GRID, GridRanks, NormalScores
from models.drift.confidence import confidence_entropy


def _reference_transform(ref: NormalScores, x: np.ndarray) -> np.ndarray:
    """Normal scores the plain way: compare with the whole grid, then interpolate."""
    g, q, feat = ref.grid, Z_GRID.size, np.arange(ref.grid.shape[0])
    lo, hi = (g < x[..., None]).sum(-1), (g <= x[..., None]).sum(-1)
    j = np.clip(lo, 1, q - 1)
    x0, x1 = g[feat, j - 1], g[feat, j]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        inner = Z_GRID[j - 1] + (x - x0) / (x1 - x0) * (Z_GRID[1] - Z_GRID[0])
        tie = 0.5 * (Z_GRID[np.clip(lo, 0, q - 1)] + Z_GRID[np.clip(hi - 1, 0, q - 1)])
        under = Z_GRID[0] - (g[:, 0] - x) / ref.slope_lo
        over = Z_GRID[-1] + (x - g[:, -1]) / ref.slope_hi
    z = np.where(hi > lo, tie, np.where(lo == 0, under, np.where(lo == q, over, inner)))
    z = np.where(ref.usable, z, np.nan)
    return np.clip(np.where(np.isnan(x), np.nan, z), -Z_CLIP, Z_CLIP)


@pytest.mark.parametrize("seed", range(5))
def test_transform_matches_plain_grid_search(seed):
    rng = np.random.default_rng(seed)
    n = 400
    cols = [
        rng.normal(size=n),
        rng.integers(0, 5, n).astype(float),  # ties in the grid
        rng.lognormal(size=n) * 1e3,
        np.full(n, 3.0),  # constant: not usable
        np.full(n, np.nan),  # all missing
        rng.standard_cauchy(n),
        np.round(rng.normal(size=n), 1),
    ]
    sample = np.column_stack(cols)
    sample[rng.random(sample.shape) < 0.05] = np.nan
    ref = NormalScores(sample)
    grid = np.nan_to_num(ref.grid)
    probes = [rng.normal(size=(600, len(cols))) * 3, np.repeat(grid.T, 3, axis=0), sample]
    x = np.concatenate(probes + [np.full((2, len(cols)), v) for v in (np.nan, np.inf, -np.inf, 1e308)])
    expected = _reference_transform(ref, x)
    np.testing.assert_array_equal(ref.transform(x), expected)
    for i in range(0, len(x), 97):  # single events take the small path
        np.testing.assert_array_equal(ref.transform(x[i]), expected[i])


@pytest.mark.parametrize("bins", [2, 3, 10, 100])
def test_grid_ranks_match_searchsorted(bins):
    edges = ndtri(np.arange(1, bins) / bins)
    ranks = GridRanks(np.tile(edges, (4, 1)))
    rng = np.random.default_rng(bins)
    z = np.concatenate([rng.normal(size=(2000, 4)), np.repeat(edges, 4).reshape(-1, 4), np.full((1, 4), 9.0)])
    lo, hi = ranks.ranks(z)
    np.testing.assert_array_equal(lo, np.searchsorted(edges, z, side="left"))
    np.testing.assert_array_equal(hi, np.searchsorted(edges, z, side="right"))


def _recursion(inc: np.ndarray, s0: np.ndarray, h: np.ndarray, restarts: dict[int, np.ndarray]):
    """``S = max(0, S + inc)`` event by event; rows in ``restarts[e]`` restart after event ``e``.

    Returns the statistics after each event before restarts ``(R, C, T + 1)``, after
    them, and each row's first alarm.
    """
    s, pre, post, first = s0.copy(), [s0.copy()], [s0.copy()], np.full(len(s0), len(inc))
    for e, step in enumerate(inc):
        s = np.maximum(s + step, 0.0)
        pre.append(s.copy())
        first[(s >= h).any(axis=1) & (first == len(inc))] = e
        if e in restarts:
            s[restarts[e]] = 0.0
        post.append(s.copy())
    return np.stack(pre, axis=-1), np.stack(post, axis=-1), first


@pytest.mark.parametrize("n", [1, 5, BLOCK, BLOCK + 1, 333, 1024])
def test_cusum_path_matches_recursion(n):
    rng = np.random.default_rng(n)
    rows, cols = 7, 3
    inc = quantize(rng.normal(-0.3, 1.0, (n, rows, cols)) * rng.choice([0.5, 3.0], (1, rows, 1)))
    s0 = quantize(rng.uniform(0, 4, (rows, cols)))
    h = rng.uniform(3, 12, (rows, cols))
    cum = np.cumsum(inc, axis=0).transpose(1, 2, 0)  # (R, C, T), exact: quantised
    if n <= BLOCK:
        path = CusumPath.walked(cum, s0, h)
    else:
        y = np.stack([blocked(cum[:, c]) for c in range(cols)])
        path = CusumPath(y, None, (np.arange(cols), np.ones(cols), np.zeros(cols)), n, s0, h)
    pre, _, first = _recursion(inc, s0, h, {})
    np.testing.assert_array_equal(path.first, first)
    for v in (0, 1, n // 2, n):
        np.testing.assert_array_equal(path.state(v), pre[..., v])
    # restart the rows that alarm, as the detectors do, moving forward in time
    restarts: dict[int, np.ndarray] = {}
    states: list[tuple[int, np.ndarray]] = []
    e = path.next_alarm(0)
    while e < n:
        states.append((e + 1, path.state(e + 1)))
        restarts[e] = np.flatnonzero(path.first == e)
        path.restart(restarts[e], e + 1)
        e = path.next_alarm(e + 1)
    pre, post, _ = _recursion(inc, s0, h, restarts)
    for v, state in states:
        np.testing.assert_array_equal(state, pre[..., v])
    np.testing.assert_array_equal(path.state(n), post[..., n])


def _numeric(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 5))
    x[1500:, 0] += 0.7
    x[1500:, 1] = rng.choice([-0.95, 0.95], 1500) + rng.normal(0, 0.3, 1500)  # shape only
    x[:, 2] = rng.integers(0, 4, 3000)
    x[2000:, 2] = rng.choice(4, 1000, p=[0.1, 0.2, 0.3, 0.4])  # discrete: window tests only
    x[2000:, 3] *= 2.0
    x[rng.random(x.shape) < np.where(np.arange(3000)[:, None] < 2200, 0.02, 0.15)] = np.nan
    return x


def _confidence(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(3000, 9)) * np.where(np.arange(3000)[:, None] < 1500, 2.0, 0.8)
    p = np.exp(logits)
    p[rng.random(p.shape) < 0.05] = 0.0  # exact zeros: entropy sums them out
    return p / p.sum(1, keepdims=True)


CASES = [
    ("numeric", lambda: NumericDrift(warmup=500, windows=(60, 250)), _numeric),
    ("numeric-default", lambda: NumericDrift(warmup=500), _numeric),
    ("missing", lambda: MissingRate(warmup=500), _numeric),
    ("multivariate", lambda: MultivariateDrift(warmup=500, window=50), _numeric),
    ("confidence", lambda: ConfidenceDrift(warmup=500, windows=(100,)), _confidence),
]


def _state(det):
    out = {"score": det.score, "fired": det.fired, "evidence": det.evidence()}
    if hasattr(det, "scores"):
        out["scores"] = det.scores.tolist()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_any_batching_gives_identical_results(case):
    _, factory, stream = case
    xs = stream(0)
    whole = factory()
    fired = whole.update_many(xs)
    feats = [f.tolist() for f in whole.fired_features]
    assert fired.size > 3

    single, fired_one, feats_one = factory(), [], []
    for i, x in enumerate(xs):
        single.update(x)
        if single.fired:
            fired_one.append(i)
            feats_one.extend(f.tolist() for f in single.fired_features)
    np.testing.assert_array_equal(fired, fired_one)
    assert feats == feats_one
    assert _state(single) == _state(whole)

    rng = np.random.default_rng(1)
    split, fired_split, i = factory(), [], 0
    while i < len(xs):
        part = xs[i : i + int(rng.choice([1, 2, BLOCK, BLOCK + 1, 99, 700, 1500]))]
        fired_split.extend(i + j for j in split.update_many(part))
        if rng.random() < 0.3:  # through a snapshot now and then
            split = type(split).restore(split.snapshot())
        i += len(part)
    np.testing.assert_array_equal(fired, fired_split)
    assert _state(split) == _state(whole)


def test_confidence_entropy_rows_are_independent_and_match_entropy():
    rng = np.random.default_rng(3)
    for k in (1, 2, 4, 8, 9, 17, 64):
        p = rng.dirichlet(np.ones(k) * 0.5, 200) if k > 1 else rng.random((200, 1))
        p[rng.random(p.shape) < 0.2] = 0.0
        p[::37, 0] = np.nan
        conf, h = confidence_entropy(p)
        for i in range(len(p)):
            c1, h1 = confidence_entropy(p[i : i + 1])
            assert (c1[0] == conf[i] or np.isnan(conf[i]) and np.isnan(c1[0])) and (h1[0] == h[i] or np.isnan(h[i]))
            e = entropy(p[i])
            assert e == h[i] or (np.isnan(e) and np.isnan(h[i]))


@pytest.mark.parametrize("size", [1, BLOCK + 3, 1000])
def test_only_discrete_features_any_batching(size):
    # no feature has a CUSUM (all discrete): only the window tests run
    rng = np.random.default_rng(5)
    xs = rng.integers(0, 5, (3000, 3)).astype(float)
    xs[2000:, 1] = rng.choice(5, 1000, p=[0.4, 0.3, 0.1, 0.1, 0.1])
    whole, parts = NumericDrift(warmup=500), NumericDrift(warmup=500)
    fired = whole.update_many(xs)
    fired_parts = np.concatenate([a + parts.update_many(xs[a : a + size]) for a in range(0, 3000, size)])
    assert fired.size and whole._bank.rows.size == 0
    np.testing.assert_array_equal(fired, fired_parts)
    assert _state(parts) == _state(whole)
