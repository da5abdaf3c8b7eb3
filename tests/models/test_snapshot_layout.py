"""Snapshot layout: windows are stored once and packed, and snapshots in the earlier layout still restore.

A detector's snapshot goes to a Faust changelog every few seconds, so its size is
traffic.  ``ConformalReference`` keeps only its values in arrival order (the
sorted copy is rebuilt on restore), ``SerialDependence`` its pairs as packed
doubles and ``SlidingChi2`` one byte per bin instead of an int32 flat index.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.anomaly import LatencyAnomaly
from models.anomaly.conformal import ConformalReference
from models.anomaly.dependence import SerialDependence
from models.drift import NumericDrift
from models.drift._window import SlidingChi2


def ar_latency(seed: int, n: int, rho: float = 0.97) -> np.ndarray:
    """``exp(0.3 AR(1)) + 5`` ms: latency that wanders with load (whitened, innovations in use at 0.97)."""
    rng = np.random.default_rng(seed)
    e, z = np.empty(n), 0.0
    for i in range(n):
        z = rho * z + rng.normal()
        e[i] = z
    return np.exp(0.3 * e) + 5.0


def lognormal(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(40.0), 0.25, n)


def _old_sliding_chi2_state(self: SlidingChi2) -> dict:
    state = self.__dict__.copy()
    del state["_seq"]
    state.pop("_plan", None)
    state["_buf"] = self._buf[: self._used]
    return state


@pytest.fixture
def old_layout(monkeypatch: pytest.MonkeyPatch):
    """Pickle as before this layout: the sorted list and deque, tuples of pairs, int32 flat bin indices."""

    def plain(self: object) -> dict:
        return self.__dict__.copy()

    def patch() -> None:
        monkeypatch.setattr(ConformalReference, "__getstate__", plain)
        monkeypatch.setattr(SerialDependence, "__getstate__", plain)
        monkeypatch.setattr(SlidingChi2, "__getstate__", _old_sliding_chi2_state)

    return patch


@pytest.mark.parametrize("values", [lognormal(0, 6000), ar_latency(1, 6000)], ids=["lognormal", "ar0.97"])
def test_latency_snapshot_in_either_layout_continues_identically(values, old_layout, monkeypatch):
    values = values.copy()
    values[4500] *= 10.0  # a spike after the restore (x4 is within the AR 0.97 stream's wander net of its floor)
    values[5200:] *= 1.6  # and a level shift
    det = LatencyAnomaly()
    det.update_many(values[:4000])
    new = det.snapshot()
    old_layout()
    old = det.snapshot()
    monkeypatch.undo()
    assert len(new) < 0.7 * len(old)
    expected = det.update_many(values[4000:]).tolist()
    assert expected, "the stream must alarm after the restore for the comparison to mean something"
    for data in (new, old):
        restored = LatencyAnomaly.restore(data)
        assert restored.update_many(values[4000:]).tolist() == expected
        assert restored.evidence() == det.evidence()


def test_numeric_drift_snapshot_in_either_layout_continues_identically(old_layout, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9000, 8))
    x[rng.random(x.shape) < 0.02] = np.nan
    x[7000:, 2] = rng.laplace(size=2000) / math.sqrt(2.0)  # a shape change the window tests catch
    det = NumericDrift(features=tuple(f"f{j}" for j in range(8)))
    det.update_many(x[:6500])
    new = det.snapshot()
    old_layout()
    old = det.snapshot()
    monkeypatch.undo()
    assert len(new) < len(old)
    # 300 events: the window tests' counts still come partly from the restored history.
    expected = [det.update_many(x[6500:6800]).tolist(), det._shape.statistic(), det.update_many(x[6800:]).tolist()]
    assert expected[2]
    for data in (new, old):
        restored = NumericDrift.restore(data)
        assert restored.update_many(x[6500:6800]).tolist() == expected[0]
        assert np.array_equal(restored._shape.statistic(), expected[1])
        assert restored.update_many(x[6800:]).tolist() == expected[2]
        assert np.array_equal(restored.scores, det.scores)


def test_snapshot_sizes():
    """Bytes per snapshot: a latency detector with full windows and a 64-feature numeric drift detector."""
    lat = LatencyAnomaly()
    lat.update_many(lognormal(5, 5000))
    # 174 KB with the sorted copies and lists of floats; 103 KB while the seasonal context kept one
    # window of values (it keeps three since it looks for periods up to a window: 40 KB here); the
    # level_shift's block medians (83 of 24 values) add 1 KB.
    assert len(lat.snapshot()) < 131_000
    wandering = LatencyAnomaly()
    wandering.update_many(ar_latency(6, 5000))
    assert len(wandering.snapshot()) < 146_500  # 210 KB before the diet, 119 KB with one window of context
    num = NumericDrift()
    num.update_many(np.random.default_rng(7).normal(size=(6000, 64)))
    assert len(num.snapshot()) < 260_000  # 439 KB with int32 flat bin indices


def test_conformal_reference_restores_its_order_and_p_values():
    import pickle

    ref = ConformalReference(window=50, tail=4)
    rng = np.random.default_rng(8)
    for v in rng.normal(size=80).tolist() + [0.0, -0.0, 1.5, 1.5]:
        ref.add(v)
    back = pickle.loads(pickle.dumps(ref))
    assert back.in_order() == ref.in_order() and back.values() == ref.values()
    for y in (-9.0, -0.5, 0.0, 1.5, 9.0):
        for side in ConformalReference.SIDES:
            assert back.p_value(y, side, 0.3) == ref.p_value(y, side, 0.3)
    back.add(2.0)
    ref.add(2.0)
    assert back.values() == ref.values()


def test_seasonal_context_from_before_the_ring_or_the_block_medians_restores():
    """A context pickled with its deque of values (and no comb), or with its ring of values (before
    the block medians), goes on as it would have: no long period is looked for."""
    import collections
    import pickle

    from models.anomaly.context import SeasonalContext

    rng = np.random.default_rng(3)
    y = np.sin(2 * np.pi * np.arange(3000) / 97) + 0.3 * rng.normal(size=3000)
    ctx = SeasonalContext(history=1200, min_period=16, min_prominence=0.4)
    ctx._refine = False  # the peak as it was
    for v in y[:1700]:
        ctx.add(float(v))
    kept = ctx.values()
    common = {"history": 1200, "min_period": 16, "min_prominence": 0.4, "_n": ctx._n, "_next_check": ctx._next_check, "period": ctx.period}
    before_ring = {**common, "_y": collections.deque(kept.tolist(), maxlen=1200)}
    before_blocks = {**common, "_y": kept.copy(), "_end": len(kept) % 1200, "_len": len(kept), "_refine": False}
    olds = []
    for state in (before_ring, before_blocks):
        old = SeasonalContext.__new__(SeasonalContext)
        old.__setstate__(state)
        assert old._refine is False and old.block == 0 and not old.long and np.array_equal(old.values(), ctx.values())
        assert old.many_periods == 3  # the residual against the last three cycles, as it was
        olds.append(old)
    copy = pickle.loads(pickle.dumps(ctx))
    assert np.array_equal(copy.values(), ctx.values())
    young = SeasonalContext(history=1200, min_period=16, min_prominence=0.4)
    for v in y[:300]:
        young.add(float(v))
    assert len(pickle.dumps(young)) < 300 * 8 + 1000  # the values kept, not the ring's empty part
    expected = [ctx.add(float(v)) for v in y[1700:]]
    for old in olds:
        assert [old.add(float(v)) for v in y[1700:]] == expected
        assert old.period == ctx.period is not None
    assert [copy.add(float(v)) for v in y[1700:]] == expected
