"""LatencyAnomaly: golden alarms, kinds, evidence, malformed input, false-alarm budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.false_alarms import STREAMS, cycle_ms
from models.anomaly import LatencyAnomaly
from models.anomaly.context import MANY_PERIODS, find_period
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget


def lognormal(seed: int, n: int = 3000, median: float = 40.0, sigma: float = 0.25) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(median), sigma, n)


# -- golden alarm indices on seeded streams ------------------------------------


def test_golden_spike_then_level_shift():
    x = lognormal(11)
    x[1000] *= 30.0  # one request 30x slower
    x[2000:] *= 1.5  # the model became 50% slower
    det = LatencyAnomaly(seed=0)
    fired = det.update_many(x)
    # The shift crosses again every 15-30 events.  2025 is no more severe than 2013, and 2041
    # more severe by 8 % only (r 1.370 against 1.266): repeats, not raised (refractory); so is
    # every crossing up to 2481, the first more than 10 % above each one in the 100 events before.
    assert fired[:3].tolist() == [1000, 2013, 2481]
    assert not (fired < 1000).any()


def test_refractory_only_drops_repeats():
    x = lognormal(11)
    x[1000] *= 30.0
    x[2000:] *= 1.5
    every = LatencyAnomaly(seed=0, refractory=0).update_many(x)
    assert every[:3].tolist() == [1000, 2013, 2025]  # each crossing alarms
    det = LatencyAnomaly(seed=0)
    deduped = det.update_many(x)
    assert set(deduped) <= set(every)  # same CUSUMs, fewer alarms
    assert 2025 not in deduped and 2041 not in deduped  # 2041: 8 % above 2013 only
    # The crossings it held back are the repeats it reports (an incident going on).
    fired, repeated = LatencyAnomaly(seed=0).update_crossings(x)
    assert fired.tolist() == deduped.tolist() and {2025, 2041} <= set(repeated.tolist())
    assert sorted([*fired.tolist(), *repeated.tolist()]) == every.tolist()
    # Each dropped crossing follows, within the span, a crossing at least 1 / 1.1 as severe.
    assert all(any(0 < i - j <= det.refractory for j in every) for i in set(every) - set(deduped))


def test_repeated_crossing_scores_just_below_threshold():
    x = lognormal(11)
    x[1000] *= 30.0
    x[2000:] *= 1.5
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:2025])
    assert det.evidence()["kind"] == "level_shift"
    det.update(x[2025])
    assert not det.fired and det.score < det.threshold
    assert det.score > 0.4999


def test_snapshot_from_before_refractory_restores():
    import pickle

    from models.base import SNAPSHOT_VERSION

    det = LatencyAnomaly(seed=0)
    det.update_many(lognormal(1, n=300))
    for attr in ("refractory", "_crossed", "_crossings"):
        del det.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old.refractory == 0
    old.update_many(lognormal(2, n=300))


def test_snapshot_from_before_drop_and_short_views_restores():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = lognormal(3, n=1200)
    x[1000] *= 0.02  # a drop: the old detector has no drop CUSUM
    ref = LatencyAnomaly(seed=0, short_window=0, drops=False)
    ref.update_many(x[:600])
    det = LatencyAnomaly(seed=0, short_window=0, drops=False)
    det.update_many(x[:600])
    # Strip what the drop and short-reference CUSUMs added: an old snapshot.
    for attr in ("short_window", "drops"):
        del det.__dict__[attr]
    det._cusum, det._k = det._cusum[:8], det._k[:8]
    det._h_plain, det._h_season = det._h_plain[:6], det._h_season[:8]
    for view in ("low", "short"):
        del det._surprisal[view]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert (old.short_window, old.drops) == (0, False)
    assert old.update_many(x[600:]).tolist() == ref.update_many(x[600:]).tolist()


def test_golden_spike_on_second_of_pair_alarms_once():
    x = lognormal(11)
    x[1001] *= 30.0
    det = LatencyAnomaly(seed=0)
    assert det.update_many(x).tolist() == [1001]
    assert det.evidence()["kind"] == "spike"


def test_golden_small_level_shift():
    x = lognormal(12)
    x[1500:] *= 1.25  # 0.9 sigma of log latency
    det = LatencyAnomaly(seed=0)
    fired = det.update_many(x)
    # 1540 before the drop and short-reference CUSUMs took their budget share; 1546 before
    # the CUSUMs averaged the surprisal over the tie-breaking draw (one draw's noise gone).
    assert fired[0] == 1547
    assert not (fired < 1500).any()
    ev = det.evidence()
    assert ev["kind"] == "level_shift"
    assert ev["recent"]["p50"] > 1.1 * 40.0


def test_spike_evidence_and_score():
    x = lognormal(3, n=800)
    det = LatencyAnomaly(seed=0)
    det.update_many(x)
    assert not det.fired and 0.0 <= det.score < det.threshold == 0.5
    det.update(5000.0)
    assert det.fired and det.score >= det.threshold
    ev = det.evidence()
    assert ev["kind"] == "spike"
    assert ev["surprisal"]["value"] > 20
    assert ev["recent"]["p99"] > ev["reference"]["p99"]
    assert 30 < ev["reference"]["p50"] < 50


@pytest.mark.parametrize("seed", [5, 6])
def test_abrupt_drop_is_a_jump(seed):
    x = lognormal(seed, n=1500, sigma=0.05)
    x[1000:] *= 0.5
    det = LatencyAnomaly(seed=0)
    fired = det.update_many(x)
    assert fired[0] == 1000
    # Far below every reference value: the drop CUSUM (lower tail of the value) leads.
    assert det.evidence()["kind"] == "drop"
    no_drops = LatencyAnomaly(seed=0, drops=False)
    assert no_drops.update_many(x)[0] == 1000
    assert no_drops.evidence()["kind"] == "jump"


def test_no_score_before_warm_up():
    det = LatencyAnomaly(seed=0)
    fired = det.update_many([10.0] * 100 + [1e6])
    assert fired.size == 0 and det.score == 0.0


def test_constant_stream_then_change_fires():
    det = LatencyAnomaly(seed=0)
    fired = det.update_many([45.0] * 1000 + [46.0] * 20)
    assert fired.tolist()[0] == 1000


# -- seasonal context and alarm severity ---------------------------------------------


def daily(seed: int, n: int = 4000, period: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Latency with a cycle (log amplitude 0.6) and its phase."""
    rng = np.random.default_rng(seed)
    phase = np.sin(2 * np.pi * np.arange(n) / period)
    return 40.0 * np.exp(0.6 * phase + rng.normal(0.0, 0.1, n)), phase


def test_no_period_on_independent_latency():
    det = LatencyAnomaly(seed=0)
    det.update_many(lognormal(5, n=4000, sigma=0.6))
    assert det.evidence()["period"] is None


def test_no_period_on_latency_that_only_wanders():
    # AR(1) with coefficient 0.97 wanders enough for the autocorrelation of 2,000 values to
    # show a prominent peak now and then (seeds 2 and 7 here); it is no cycle, and the
    # seasonal CUSUMs on it raised about 70-150 of 250-340 false alarms per 100k events.
    for seed in (2, 7):
        z = np.log(_ar1_latency(0.97, 2000, seed) - 5.0)
        assert find_period(z, 16, 0.4, significance=0.0) is not None
        assert find_period(z, 16, 0.4) is None


def test_a_cycle_in_autocorrelated_latency_is_still_found():
    x, _ = daily(1)
    ar = np.log(_ar1_latency(0.9, len(x), 8) - 5.0)
    det = LatencyAnomaly(seed=0)
    det.update_many(x * np.exp(0.3 * ar))  # AR(1) noise of log-SD 0.2 on a cycle of amplitude 0.6
    assert det.evidence()["period"] in range(190, 211)  # the noise moves the peak a little


def test_golden_out_of_phase_value_needs_the_seasonal_view():
    x, phase = daily(0)
    low = (np.arange(len(x)) >= 3000) & (np.arange(len(x)) < 3200) & (phase < -0.5)
    x[low] *= 2.0  # the nightly lows doubled: still below the daily highs
    det = LatencyAnomaly(seed=0)
    fired = det.update_many(x)
    assert det.evidence()["period"] in range(196, 205)
    during = fired[(fired >= 3100) & (fired < 3200)]  # the first doubled low is 3117
    assert during[0] == 3117
    plain = LatencyAnomaly(seed=0, season_prominence=None).update_many(x)
    assert not ((plain >= 3100) & (plain < 3200)).any()


def _cycle(seed: int, n: int, period: int, amplitude: float, sigma: float) -> np.ndarray:
    """``n`` latencies of :func:`bench.false_alarms.cycle_ms` (independent noise), drawn with ``seed``."""
    return cycle_ms(period, amplitude, sigma)(n, np.random.default_rng(seed))


def test_period_is_placed_by_the_comb_of_its_multiples():
    # The autocorrelation's peak sits 6-12 lags short of a period of 1,440 in 6,000 values (its
    # sum of n - lag pairs over n tilts it); the least mean squared difference does not.
    for seed in range(3):
        y = np.log(_cycle(seed, 6000, 1440, 1.0, 0.1))
        assert find_period(y, 16, 0.4) in range(1436, 1445)
        assert find_period(y, 16, 0.4, refine=False) in range(1425, 1436)


def test_a_cycle_as_long_as_a_third_of_the_context_is_found():
    det = LatencyAnomaly(seed=0)
    det.update_many(_cycle(1, 14_000, 1440, 0.3, 0.3))
    assert det.evidence()["period"] in range(1380, 1501)  # the context keeps 3 windows: periods up to 2,000


def test_cycle_is_no_level_shift():
    # While a period holds the value's tails (against a reference of every phase) are not in use: the
    # daily high alarmed as a level shift 13-19 times per 30k events at 100 per million (3 expected).
    budget = FalseAlarmBudget(per_million=100)
    for seed in range(2):
        det = LatencyAnomaly(seed=0, budget=budget)
        fired = det.update_many(_cycle(seed, 30_000, 288, 0.3, 0.3))
        assert det.evidence()["period"] in range(284, 293)
        assert fired.size <= 3


def test_cusums_not_in_use_while_a_period_holds_stay_at_zero():
    # The value's level_shift and the short reference's spike are off while a period holds (once the
    # residual's reference is ready to rank it); they used to take each event's increment anyway (reset
    # only before the next event), so the first event after the period stopped holding started them
    # from the last seasonal event's.
    from models.anomaly.latency_cusums import CUSUMS, SEASON_OFF

    off = [i for i, c in enumerate(CUSUMS) if c[:2] in SEASON_OFF]
    det = LatencyAnomaly(seed=0)
    seasonal = 0
    for x in _cycle(0, 6_000, 288, 0.3, 0.3):
        ready = det._refs["season"].ready  # before the event: it is scored with the plain views until then
        det.update(x)
        if det.evidence()["period"] is not None and ready:
            seasonal += 1
            assert all(det._cusum[i] == 0.0 for i in off)
    assert seasonal > 1_000


def test_spike_in_a_cycle_is_caught_by_the_value_tail():
    # A latency ten times the usual in a cycle of log amplitude 0.3 (noise 0.3): the seasonal
    # residual's tail ranks it less far out than the value's does; with the value's single-event
    # tails off while the period holds, it went unseen (here on these seeds; 2 to 4 in 10 overall).
    for seed in (3, 6):
        x = _cycle(seed, 12_000, 288, 0.3, 0.3)
        at = 10_000 + 37 * seed
        x[at] *= 10.0
        det = LatencyAnomaly(seed=0)
        assert at in det.update_many(x).tolist() and det.evidence()["period"] is not None
        without = LatencyAnomaly(seed=0)
        for name in ("_h_season", "_h_season_blocks"):  # spike, drop
            setattr(without, name, [math.inf if i in (0, 8) else h for i, h in enumerate(getattr(without, name))])
        assert at not in without.update_many(x).tolist()


def test_small_level_shift_in_a_short_cycle_is_seen_against_many_cycles():
    # Latency 1.3 times higher (0.87 log-SDs) in a cycle of 288.  Scored per event, against the
    # median of the last three cycles the shift shows for about two cycles, in a residual with 1.2
    # times the noise, and none of these seeds alarms within 1,000 events; against the last fifteen,
    # some do.  Scored per block of 6 residuals (their median has about half the noise), every seed
    # alarms within 300 events.
    delays = {}
    for block, many in ((0, MANY_PERIODS), (0, 3), (6, MANY_PERIODS)):
        delays[block, many] = []
        for seed in range(12):
            x = _cycle(seed, 11_000, 288, 0.3, 0.3)
            x[10_000:] *= 1.3
            det = LatencyAnomaly(seed=0, season_block=block)
            det._context.many_periods = many
            fired = det.update_many(x)
            assert not ((fired >= 5_000) & (fired < 10_000)).any()  # nothing before the shift
            after = fired[fired >= 10_000]
            if after.size:
                delays[block, many].append(int(after[0]) - 10_000)
    assert not delays[0, 3] and 3 <= len(delays[0, MANY_PERIODS]) <= 4
    assert len(delays[6, MANY_PERIODS]) == 12 and max(delays[6, MANY_PERIODS]) < 300


def test_a_cycle_longer_than_the_window_is_found_in_block_medians():
    # A cycle of 5,000 requests (a slow model's day) is longer than the values the context looks
    # at show; read as a level shift every day it raised 243 and 271 alarms per 100k (10
    # expected).  Found in the medians of blocks of 15 values, nearly all alarms come before
    # two cycles are seen (seed 0: 14 of 17); after that about the budget's rate.  Looked for
    # over three cycles, as in the values, the third day alarmed too (seed 0: 32).
    budget = FalseAlarmBudget(per_million=100)
    for seed in range(2):
        det = LatencyAnomaly(seed=0, budget=budget)
        fired = det.update_many(_cycle(seed, 40_000, 5000, 0.3, 0.3))
        assert det.evidence()["period"] in range(4950, 5050) and det._context.long
        assert 0 < (fired >= 10_000).sum() <= 5  # 3 expected in 30,000 events


def test_a_level_shift_in_a_long_cycle_alarms_at_once():
    x = _cycle(0, 32_000, 5000, 0.3, 0.3)
    x[30_000:] *= 2.0
    det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    det.update_many(x[:30_000])
    kinds = []
    for v in x[30_000:30_010]:
        det.update(v)
        kinds += [det.evidence()["kind"]] if det.fired else []
    # The value's upper tail (per event) sees it first: seasonal_shift steps once per block of 6.
    assert kinds[:1] in (["spike"], ["seasonal_shift"])


def test_snapshot_while_a_long_cycle_holds_round_trips():
    x = _cycle(1, 36_000, 5000, 0.3, 0.3)
    x[33_000:] *= 1.5
    det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    det.update_many(x[:30_000])
    assert det._context.long
    restored = LatencyAnomaly.restore(det.snapshot())
    assert restored.update_many(x[30_000:]).tolist() == det.update_many(x[30_000:]).tolist()
    assert restored.score == det.score


def test_snapshot_from_before_long_cycles_restores_without_them():
    import pickle

    from models.anomaly.context import SeasonalContext
    from models.base import SNAPSHOT_VERSION

    def predecessor() -> LatencyAnomaly:  # its context kept no block medians
        det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
        ctx = det._context
        det._context = SeasonalContext(ctx.history, ctx.min_period, ctx.min_prominence)
        return det

    x = _cycle(0, 30_000, 5000, 0.3, 0.3)
    det, ref = predecessor(), predecessor()
    det.update_many(x[:20_000])
    ref.update_many(x[:20_000])
    ctx, kept = det._context, det._context.values()
    ctx.__dict__ = {  # the layout before the block medians: a ring of values
        **{key: ctx.__dict__[key] for key in ("history", "min_period", "min_prominence", "_n", "_next_check", "period", "_refine")},
        **{"_y": kept, "_end": len(kept) % ctx.history, "_len": len(kept)},
    }
    del det.__dict__["_season_whitener"]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old._season_whitener is None and old._context.block == 0 and not old._context.long
    fired = old.update_many(x[20_000:]).tolist()
    assert fired == ref.update_many(x[20_000:]).tolist()
    assert len(fired) > 5  # as before: the daily rise reads as a level shift


def test_floor_found_before_the_cycle_yields_to_it():
    # Before the cycle of 1,440 shows (three periods), the values pass for a shifted lognormal; net
    # of that floor their spread would rise and fall with the cycle (seasonal_shift 120 times per
    # 100k at 100 per million, against 10 expected).
    x = _cycle(0, 12_000, 1440, 1.0, 0.1)
    det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    det.update_many(x[:5000])
    assert det.evidence()["floor"] is not None and det.evidence()["period"] is None
    det.update_many(x[5000:])
    assert det.evidence()["floor"] is None and det.evidence()["period"] in range(1430, 1451)
    kept = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    kept._floor_yields = False  # as a snapshot from before
    kept.update_many(x)
    assert kept.evidence()["floor"] is not None


@pytest.mark.parametrize("whiten", [True, False])
def test_detector_that_gave_up_its_floor_snapshots_and_goes_on(whiten):
    x = _cycle(0, 12_000, 1440, 1.0, 0.1)
    det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100), whiten=whiten)
    det.update_many(x[:5000])
    assert det.evidence()["floor"] is not None
    det.update_many(x[5000:8500])
    assert det.evidence()["floor"] is None and det.evidence()["period"] is not None
    copy = LatencyAnomaly.restore(det.snapshot())
    assert copy.update_many(x[8500:]).tolist() == det.update_many(x[8500:]).tolist()
    assert copy.evidence() == det.evidence()


def test_severity_ranks_an_extreme_alarm_higher():
    x = lognormal(3, n=800)
    scores = []
    for weight in (0.0, 0.025):
        det = LatencyAnomaly(seed=0, severity_weight=weight)
        det.update_many(x)
        det.update(5000.0)
        assert det.fired
        scores.append(det.score)
    assert 0.5 <= scores[0] < scores[1] < 1.0


def test_severity_counts_ties_against_the_event():
    # Latency quantised to whole milliseconds: a fifth of the reference equals the maximum.
    x = np.random.default_rng(5).integers(1, 6, 1500).astype(float)
    top, far = math.asinh(5.0), math.asinh(50.0)
    for seed in (0, 1, 2):
        det = LatencyAnomaly(seed=seed)
        det.update_many(x)
        # Not extreme, whatever a tie-breaking draw would have said (at most -ln(1/5) or so) ...
        assert det._severity({"value": top, "low": top}) < 2.0
        # ... while a value far beyond the reference still is.
        assert det._severity({"value": far, "low": far}) > 10.0


def test_corroboration_ranks_alarms_other_views_agree_on_higher():
    x = lognormal(11)
    x[1000] *= 30.0
    x[2000:] *= 1.5
    runs = {}
    for weight in (0.0, 0.1):
        det = LatencyAnomaly(seed=0, refractory=0, corroboration_weight=weight)
        scores = []
        for v in x:
            det.update(v)
            scores.append(det.score)
        runs[weight] = np.asarray(scores)
    plain, corroborated = runs[0.0], runs[0.1]
    crossed = plain >= 0.5
    # The same crossings (with no refractory span the ranking cannot drop any) ...
    assert ((corroborated >= 0.5) == crossed).all()
    assert (corroborated[~crossed] == plain[~crossed]).all()
    # ... never ranked lower, and higher where other views held evidence too.
    assert (corroborated[crossed] >= plain[crossed]).all()
    assert (corroborated[crossed] > plain[crossed]).any()


def _restored_without(attribute: str) -> tuple[LatencyAnomaly, np.ndarray]:
    """A detector that learned 1,500 values, restored from a snapshot taken before ``attribute`` existed."""
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = lognormal(11)
    x[2000:] *= 1.5
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:1500])
    del det.__dict__[attribute]
    return LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det))), x


def test_snapshot_from_before_corroboration_restores_without_it():
    old, x = _restored_without("corroboration_weight")
    assert old.corroboration_weight == 0.0
    ref = LatencyAnomaly(seed=0, corroboration_weight=0.0)
    ref.update_many(x[:1500])
    assert old.update_many(x[1500:]).tolist() == ref.update_many(x[1500:]).tolist()


def test_alarms_do_not_depend_on_the_seed():
    # The CUSUMs average the surprisal over the tie-breaking draw: nothing random is left,
    # also on a quantised stream, where every value ties with many others.
    x = np.round(lognormal(11))
    x[1000] *= 30.0
    x[2000:] = np.round(x[2000:] * 1.5)
    runs = []
    for seed in (0, 1, 2):
        det = LatencyAnomaly(seed=seed)
        scores = [(det.update(v), det.score)[1] for v in x]
        runs.append(scores)
    assert runs[0] == runs[1] == runs[2]
    assert max(runs[0]) >= 0.5


def test_snapshot_from_before_tie_mean_restores_with_the_draw():
    old, x = _restored_without("_tie_mean")
    assert old._tie_mean is False
    again, _ = _restored_without("_tie_mean")
    # The old detector still draws (a snapshot carries its generator): both copies agree ...
    assert old.update_many(x[1500:]).tolist() == again.update_many(x[1500:]).tolist()
    # ... and differ from the averaged surprisal somewhere.
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:1500])
    fresh = [(det.update(v), det._surprisal["value"])[1] for v in x[1500:1600]]
    old2, _ = _restored_without("_tie_mean")
    drawn = [(old2.update(v), old2._surprisal["value"])[1] for v in x[1500:1600]]
    assert fresh != drawn


def test_snapshot_from_before_tie_severity_restores_as_it_was():
    old, x = _restored_without("_severity_ties")
    assert old._severity_ties is False
    scores = [(old.update(v), old.score)[1] for v in x[1500:]]
    assert max(scores) >= 0.5  # the level shift still alarms


# -- parameters and malformed input -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"window": 100}, "window"),
        ({"tail": 1}, "tail"),
        ({"shift_k": 1.0}, "shift_k"),
        ({"shift_k": 5.0}, "shift_k"),
        ({"volatility_k": 0.5}, "volatility_k"),
        ({"spike_k": float("nan")}, "spike_k"),
        ({"budget": 1.0}, "budget"),
        ({"recent": 0}, "recent"),
        ({"min_value": float("inf")}, "min_value"),
        ({"season_prominence": 0.0}, "season_prominence"),
        ({"season_prominence": float("nan")}, "season_prominence"),
        ({"severity_weight": -0.1}, "severity_weight"),
        ({"corroboration_weight": -0.1}, "corroboration_weight"),
        ({"refractory": -1}, "refractory"),
        ({"refractory": 2.5}, "refractory"),
        ({"precedent_after": -1}, "precedent_after"),
        ({"precedent_after": 2.5}, "precedent_after"),
        ({"whiten": 1}, "whiten"),
        ({"floor": 1}, "floor"),
        ({"level_block": 1}, "level_block"),
        ({"level_block": 200}, "level_block"),
    ],
)
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LatencyAnomaly(**kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -1.0, "fast", None])
def test_malformed_values_raise_and_leave_state_alone(bad):
    det = LatencyAnomaly(seed=0)
    det.update_many(lognormal(1, n=300))
    before = det.snapshot()
    with pytest.raises(ValueError):
        det.update(bad)
    assert det.snapshot() == before


def test_min_value_none_accepts_negative_metrics():
    det = LatencyAnomaly(min_value=None, seed=0)
    det.update_many(np.random.default_rng(0).normal(-20.0, 1.0, 500))
    assert det.score >= 0.0


# -- calibration ----------------------------------------------------------------


def test_budget_changes_threshold_sensitivity():
    x = lognormal(12)
    x[1500:] *= 1.25
    loose = LatencyAnomaly(budget=FalseAlarmBudget(1000.0), seed=0).update_many(x)
    strict = LatencyAnomaly(seed=0).update_many(x)
    assert loose[loose >= 1500][0] < strict[strict >= 1500][0]


@pytest.mark.parametrize(
    "name, gen",
    [
        ("lognormal", lambda r, n: r.lognormal(3.0, 1.0, n)),
        ("pareto_1.5", lambda r, n: 10.0 * (1.0 + r.pareto(1.5, n))),
        ("whole_ms", lambda r, n: np.round(r.lognormal(3.0, 0.5, n))),  # quantised: every value ties with many
        # fast and quantised: the lowest values all tie at 1 ms, with a rare 0 ms below them
        ("whole_ms_fast", lambda r, n: np.round(r.lognormal(1.5, 0.6, n))),
        # 1% of requests time out at exactly 30 s: often none in the short window, and a
        # crossing kept out of the references for good made every later timeout alarm
        # (611 alarms at 1 per million before kept-out crossings became precedent)
        ("timeouts", lambda r, n: np.where(r.random(n) < 0.01, 30000.0, np.minimum(r.lognormal(np.log(200.0), 0.5, n), 30000.0))),
    ],
)
def test_false_alarms_within_budget_on_stationary_heavy_tails(name, gen):
    # 100k events: at 1 per million 0.1 alarms are expected; at 50 per million, 5.
    # (bench: 1e6 events per distribution, see the report; this keeps the suite fast.)
    n = 100_000
    x = gen(np.random.default_rng(2024), n)
    assert LatencyAnomaly(seed=1).update_many(x).size == 0
    loose = LatencyAnomaly(budget=FalseAlarmBudget(50.0), seed=1).update_many(x).size
    assert loose <= 15, f"{name}: {loose} alarms where about 5 are expected"


@pytest.mark.parametrize(
    "name, gen",
    [
        # a rare second level (0.2% at 50 ms, else 5 ms): 154 alarms before precedents
        ("rare_level", lambda r, n: np.where(r.random(n) < 0.002, 50.0, 5.0)),
        # whole milliseconds, median 1.6: rare 0, 6, 7, 8 ms (about 60 before)
        ("whole_ms_1to3", lambda r, n: np.round(r.lognormal(0.5, 0.4, n))),
    ],
)
def test_false_alarms_within_budget_on_recurring_rare_values(name, gen):
    # A value that once crossed and was kept out of the references must not alarm every
    # time it recurs.  100 per million: about 10 expected in 100k events; allow 3x.
    x = gen(np.random.default_rng(2024), 100_000)
    fired = LatencyAnomaly(budget=FalseAlarmBudget(100.0), seed=1).update_many(x).size
    assert fired <= 30, f"{name}: {fired} alarms where about 10 are expected"


def _recurring_spikes() -> np.ndarray:
    x = lognormal(11)
    x[1000:2500:300] = 1200.0  # the same 30x spike every 300 events
    x[2700] = 4000.0  # a larger one
    return x


def test_a_recurring_spike_becomes_precedent():
    x = _recurring_spikes()
    fired = set(LatencyAnomaly(seed=0).update_many(x).tolist())
    assert {1000, 2700} <= fired  # the first spike, and a larger one, still alarm at once
    assert not fired & {1900, 2200}  # the same spike, seen before, no longer alarms every time
    # Kept out for good (before precedents), every repeat alarmed.
    assert {1000, 1300, 1900, 2200, 2700} <= set(LatencyAnomaly(seed=0, precedent_after=None).update_many(x).tolist())


def _daily_edges(n: int = 4032) -> np.ndarray:
    """A noise-free daily pattern (a cycle of 288 at 80 ms for 100 events, else 32 ms), as NAB's art_daily_no_noise."""
    i = np.arange(n)
    return np.where(((i + 60) % 288) < 100, 80.0, 32.0)


def test_a_recurring_edge_of_a_noise_free_pattern_alarms_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Scored net of its lag-1 dependence, each day's falling edge lies a little below the one
    # before (rho creeping up to 0.99): within PRECEDENT_SLACK of the reference's range, the
    # edge kept out a day earlier still vouches for it.
    import models.anomaly.latency_scoring as scoring

    x = _daily_edges()
    assert LatencyAnomaly(seed=0).update_many(x).tolist() == [328]
    monkeypatch.setattr(scoring, "PRECEDENT_SLACK", 0.0)
    assert LatencyAnomaly(seed=0).update_many(x).tolist() == [328, 616]


def test_snapshot_round_trip_keeps_the_kept_out_crossings():
    x = _recurring_spikes()
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:1500])
    assert det._kept_out["value"]  # the crossings at 1000 and 1300
    copy = LatencyAnomaly.restore(det.snapshot())
    assert copy._kept_out == det._kept_out
    assert copy.update_many(x[1500:]).tolist() == det.update_many(x[1500:]).tolist()


def test_snapshot_from_before_precedents_restores_without_them():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _recurring_spikes()
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:1500])
    for attr in ("precedent_after", "_kept_out", "_short_precedent"):
        del det.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert (old.precedent_after, old._short_precedent) == (None, False)
    ref = LatencyAnomaly(seed=0, precedent_after=None)
    ref._short_precedent = False
    ref.update_many(x[:1500])
    fired = (old.update_many(x[1500:]) + 1500).tolist()
    assert fired == (ref.update_many(x[1500:]) + 1500).tolist()
    assert {1900, 2200} <= set(fired)  # as before: every repeat alarms


# -- autocorrelated latency (load that wanders) ---------------------------------------


def _ar1_latency(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    z = np.empty(n)
    z[0] = e[0] / math.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        z[t] = phi * z[t - 1] + e[t]
    return np.exp(0.3 * z) + 5.0  # milliseconds


def test_autocorrelated_latency_is_whitened():
    # AR(1) phi = 0.7: unwhitened, about 100 false alarms per 100k events at 1 per million
    # (the value view's surprisals come in runs); whitened, about 2 (bench: 0 to 4 per 100k).
    x = _ar1_latency(0.7, 50_000, 3)
    det = LatencyAnomaly(seed=0)
    assert det.update_many(x).size <= 2
    assert 0.6 < det.evidence()["autocorrelation"] < 0.8
    assert LatencyAnomaly(seed=0, whiten=False).update_many(x).size > 10


def test_whitening_leaves_exchangeable_streams_as_they_were():
    x = lognormal(21, n=4000)
    x[3000:] *= 1.5
    det = LatencyAnomaly(seed=0)
    fired, plain = det.update_many(x[:3100]), LatencyAnomaly(seed=0, whiten=False).update_many(x[:3100])
    assert fired.tolist() == plain.tolist() and fired[0] == 3019
    assert det.evidence()["autocorrelation"] == 0.0
    # Afterwards the shift itself, half in the window, reads as dependence (and is whitened).


def _spike_and_shift(n: int, seed: int, at: int) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) latency (coefficient 0.5, 5 ms floor) with, at ``at``, a spike of 8 sd or a lasting shift of 2 sd."""
    z = np.log(_ar1_latency(0.5, n, seed) - 5.0) / 0.3
    sd = 1.0 / math.sqrt(1.0 - 0.25)
    spike, shift = z.copy(), z.copy()
    spike[at] += 8.0 * sd
    shift[at:] += 2.0 * sd
    return np.exp(0.3 * spike) + 5.0, np.exp(0.3 * shift) + 5.0


def test_whitened_spike_and_shift_on_autocorrelated_latency_alarm():
    spike, shift = _spike_and_shift(4000, 4, 3000)
    fired = LatencyAnomaly(seed=0).update_many(spike)
    assert fired[fired >= 3000][0] == 3000
    fired = LatencyAnomaly(seed=0).update_many(shift)
    assert 3000 <= fired[fired >= 3000][0] < 3050


def test_level_shift_on_wandering_latency_is_scored_in_blocks():
    # AR(1) 0.9: the median the whitened value is centred on wanders, and per event the value's
    # level_shift took its runs for shifts (31 per million at a budget of 1 in bench.latency_changes).
    x = _ar1_latency(0.9, 15_000, 2)
    per_event, kinds = LatencyAnomaly(seed=0, level_block=0), []
    for v in x:
        per_event.update(v)
        if per_event.fired:
            kinds.append(per_event.evidence()["kind"])
    assert kinds == ["level_shift", "level_shift"]
    det = LatencyAnomaly(seed=0)
    assert det.update_many(x).size == 0 and det._level_by_blocks
    assert LatencyAnomaly(seed=0).update_many(lognormal(3, n=3000)).size == 0  # independent: per event


def test_lagged_block_reference_sees_a_level_shift_on_wandering_latency_sooner(monkeypatch):
    # A doubling: each shifted median learned at once made the next one less extreme (surprisals
    # 7.6, 6.3, 4.0, 3.2); 4 blocks late, the first ones are ranked against the level before it.
    import models.anomaly.latency_anomaly as latency_anomaly

    delays = {}
    for lag in (4, 0):
        monkeypatch.setattr(latency_anomaly, "LEVEL_BLOCK_LAG", lag)
        delays[lag] = []
        for seed in (10, 11, 13):
            x = _ar1_latency(0.9, 12_000, seed)
            x[10_000:] *= 2.0
            fired = LatencyAnomaly(seed=0).update_many(x)
            assert fired[0] >= 10_000
            delays[lag].append(int(fired[0]) - 10_000)
    assert all(a < b for a, b in zip(delays[4], delays[0])) and max(delays[4]) < 120


def test_whitener_anchor_follows_a_run_of_crossings_only():
    from models.anomaly.dependence import PATCH_RUN, Whitener

    w = Whitener(100, 4)
    for v in range(10):
        w.learn(float(v), None)
    for i in range(PATCH_RUN - 1):
        w.skip(50.0 + i)
        assert w.anchor == 9.0  # a spike (or two) anchors nothing
    w.skip(60.0)
    assert w.anchor == 60.0  # a run of crossings is a new level
    w.learn(61.0, None)
    w.skip(90.0)
    assert w.anchor == 61.0  # the run starts again after a value that did not cross
    old = Whitener.__new__(Whitener)  # from before: the anchor never followed a crossing
    old.__setstate__({k: v for k, v in w.__dict__.items() if k not in ("patch_run", "_crossings_in_a_row")})
    for v in (70.0, 71.0, 72.0, 73.0):
        old.skip(v)
    assert old.anchor == 61.0


def test_snapshot_round_trip_keeps_the_dependence():
    x = _ar1_latency(0.8, 6000, 5)
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:3000])
    copy = LatencyAnomaly.restore(det.snapshot())
    assert copy.evidence() == det.evidence()
    assert copy.update_many(x[3000:]).tolist() == det.update_many(x[3000:]).tolist()
    assert copy.evidence()["autocorrelation"] == det.evidence()["autocorrelation"] > 0.7


def test_snapshot_from_before_whitening_restores_without_it():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _ar1_latency(0.8, 6000, 6)
    det = LatencyAnomaly(seed=0, whiten=False)
    det.update_many(x[:3000])
    for attr in ("whiten", "_whitener"):
        del det.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old.whiten is False
    ref = LatencyAnomaly(seed=0, whiten=False)
    ref.update_many(x[:3000])
    assert old.update_many(x[3000:]).tolist() == ref.update_many(x[3000:]).tolist()
    assert old.evidence() == ref.evidence()


def test_snapshot_with_the_whitening_in_the_detectors_own_fields_restores_it():
    # Between d23928b and the Whitener, the raw reference, dependence, anchor and last normal
    # score were fields of the detector itself.
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _ar1_latency(0.8, 6000, 7)
    det, ref = LatencyAnomaly(seed=0), LatencyAnomaly(seed=0)
    det.update_many(x[:3000])
    ref.update_many(x[:3000])
    whitener = det.__dict__.pop("_whitener")
    det.__dict__.update(_raw=whitener.raw, _dependence=whitener.dependence, _anchor=whitener.anchor, _z_last=whitener._z_last)
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert "_raw" not in old.__dict__ and old.evidence() == ref.evidence()
    assert old.update_many(x[3000:]).tolist() == ref.update_many(x[3000:]).tolist()


def test_snapshot_from_before_floor_refutation_keeps_its_floor():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _ar1_latency(0.9, 3000, 8)
    det = LatencyAnomaly(seed=0)
    det.update_many(x)
    assert det.evidence()["floor"] is not None and det._floor_refuted_below > 0
    del det.__dict__["_floor_refuted_below"]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old._floor_refuted_below == -math.inf
    old.update(0.001)  # far below the floor: kept, as before
    assert old.evidence()["floor"] is not None


def test_floor_of_wandering_latency_is_found_and_keeps_the_budget():
    # exp(0.3 AR(1)) + 5 ms, phi 0.9: with asinh(x) the steps' spread is ~10x larger at high
    # levels than at low ones, the surprisals come in runs (bench: ~150 per 100k at 100 per
    # million); net of the 5 ms floor, 2 to 3x the budget (bench: 20 and 27 per 100k).
    x = _ar1_latency(0.9, 30_000, 8)
    budget = FalseAlarmBudget(per_million=100)
    det = LatencyAnomaly(seed=0, budget=budget)
    fired = det.update_many(x)
    assert abs(det.evidence()["floor"] - 5.0) < 0.2
    assert fired.size <= 15  # 12 (3 expected); 62 without the floor
    assert LatencyAnomaly(seed=0, budget=budget, floor=False).update_many(x).size > 3 * fired.size


def test_no_floor_leaves_lognormal_latency_as_it_was():
    x = lognormal(22, n=5000)
    x[4000:] *= 1.5
    det, plain = LatencyAnomaly(seed=0), LatencyAnomaly(seed=0, floor=False)
    assert det.update_many(x).tolist() == plain.update_many(x).tolist()
    assert det.evidence()["floor"] is None and det._floor_check == 6000  # looked at 2,000 and 4,000


def test_spike_and_shift_alarm_after_the_floor_is_found():
    spike, shift = _spike_and_shift(5000, 9, 4000)
    det = LatencyAnomaly(seed=0)
    fired = det.update_many(spike)
    assert det.evidence()["floor"] is not None
    assert fired[fired >= 4000][0] == 4000
    fired = LatencyAnomaly(seed=0).update_many(shift)
    assert 4000 <= fired[fired >= 4000][0] < 4050


def test_snapshot_from_before_the_floor_restores_without_it():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _ar1_latency(0.9, 6000, 10)
    det, ref = LatencyAnomaly(seed=0), LatencyAnomaly(seed=0, floor=False)
    det.update_many(x[:1500])
    ref.update_many(x[:1500])
    for attr in ("floor", "_map", "_floor_check"):
        del det.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old.floor is False
    assert old.update_many(x[1500:]).tolist() == ref.update_many(x[1500:]).tolist()
    assert old.evidence()["floor"] is None and old.evidence() == ref.evidence()


def test_latency_that_is_nearly_a_random_walk_is_ranked_by_its_innovations(monkeypatch):
    # AR(1) with coefficient 0.97: the median the whitened value is centred on wanders by about
    # one innovation over the window, and the value's surprisals came in runs again (about 130
    # false alarms per 100k events at the default budget).  Ranking the innovations alone: 6-10.
    # Here, once the window is full: 12 alarms in 27k events at 100 per million, 65 centred
    # (with the value's level_shift per event; in blocks, as it is while not ranking innovations, 13).
    import models.anomaly.dependence as dependence

    x = _ar1_latency(0.97, 30_000, 11)
    budget = FalseAlarmBudget(per_million=100)
    det = LatencyAnomaly(seed=0, budget=budget)
    fired = det.update_many(x)
    assert det._whitener._innovations is not None  # in use at the end
    monkeypatch.setattr(dependence, "MAX_MEDIAN_WANDER", math.inf)
    centred = LatencyAnomaly(seed=0, budget=budget, level_block=0).update_many(x)
    assert 3 * (fired >= 3000).sum() < (centred >= 3000).sum()


def test_a_spike_and_a_jump_on_a_near_random_walk_alarm_at_once():
    # In units of the innovations (the stream's own sd is 4.1 of them): a level that jumps by 10
    # at once is new; one that moves by 2 sd, as the stream wanders by itself, is not.
    z = np.log(_ar1_latency(0.97, 6000, 12) - 5.0) / 0.3
    spike, jump = z.copy(), z.copy()
    spike[5000] += 10.0
    jump[5000:] += 10.0
    for x in (spike, jump):
        fired = LatencyAnomaly(seed=0).update_many(np.exp(0.3 * x) + 5.0)
        assert fired[fired >= 5000][0] == 5000


def test_no_dependence_is_read_into_a_stream_of_ties():
    # 99.8 % of the values tie: the tied value's normal score drifts with the rare other values
    # in the reference, and pairs of tied values drifted together (rho was 0.99).
    x = np.where(np.random.default_rng(13).random(20_000) < 0.002, 50.0, 5.0)
    det = LatencyAnomaly(seed=0)
    rhos = []
    for v in x:
        det.update(v)
        rhos.append(det.evidence()["autocorrelation"])
    assert max(rhos) == 0.0


def test_snapshot_from_before_the_innovations_restores_and_uses_them():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _ar1_latency(0.97, 8000, 14)
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:3000])
    for attr in ("_innovations", "_rho_c"):
        del det._whitener.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    current = LatencyAnomaly.restore(det.snapshot())
    assert old.update_many(x[3000:]).tolist() == current.update_many(x[3000:]).tolist()
    assert old._whitener._innovations is not None


# -- a short period's residual in blocks -------------------------------------------


def test_cycle_with_autocorrelated_noise_keeps_near_its_budget_with_residual_blocks():
    # A cycle of 288 whose noise is AR(1) 0.7: the residual's per-event surprisals come in runs,
    # which the seasonal_shift CUSUM took for shifts (16x the budget in bench.false_alarms).  Its
    # block medians are nearly independent.  30k events at 100 per million: 3 expected.
    x = cycle_ms(288, 0.3, 0.3, phi=0.7)(30_000, np.random.default_rng(0))
    kinds = {}
    for block in (6, 0):
        det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100), season_block=block)
        kinds[block] = []
        for v in x:
            det.update(v)
            if det.fired:
                kinds[block].append(det.evidence()["kind"])
    assert kinds[0].count("seasonal_shift") >= 20
    assert kinds[6].count("seasonal_shift") <= 2 and len(kinds[6]) <= 12


def test_residual_blocks_are_kept_for_short_and_long_periods():
    det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    det.update_many(_cycle(0, 6_000, 288, 0.3, 0.3))
    assert det._season_blocks is not None and det._season_blocks.ready
    long = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    long.update_many(_cycle(1, 30_000, 5000, 0.3, 0.3))
    assert long._context.long and long._season_blocks is not None and long._season_blocks.ready
    assert LatencyAnomaly(season_block=0).update_many(_cycle(0, 6_000, 288, 0.3, 0.3)).size == 0


def _per_event_long_residual(budget: FalseAlarmBudget = DEFAULT_BUDGET) -> LatencyAnomaly:
    """A detector scoring a long period's level shifts per event on the whitened residual (as before blocks)."""
    det = LatencyAnomaly(seed=0, budget=budget)
    det._long_season_blocks = False
    return det


def test_a_small_level_shift_in_a_long_cycle_is_found_on_block_medians():
    # A slow model 1.3x slower (0.87 SD) in a cycle of 5,000 requests: per event, two-sided, the
    # residual's surprisals average about shift_k and the CUSUM hardly grows (bench.latency_changes:
    # found in 6 seeds of 20); the medians of blocks of 6 move by the whole shift (20 of 20).
    for seed in range(2):
        x = _cycle(seed, 21_000, 5000, 0.3, 0.3)
        x[20_000:] *= 1.3
        det = LatencyAnomaly(seed=0)
        fired = det.update_many(x)
        assert det._context.long and det._season_whitener is not None and det._season_whitener.rho < 0.25
        assert not ((fired >= 12_000) & (fired < 20_000)).any()  # none after the first two cycles
        found = fired[fired >= 20_000]
        assert found.size and found[0] < 20_600
        assert not (_per_event_long_residual().update_many(x) >= 12_000).any()


def test_a_long_cycle_whose_noise_wanders_is_scored_per_event():
    # AR(1) 0.7 noise: the long residual's whitening finds rho about 0.7, and its block medians
    # would be dependent too; seasonal_shift stays per event on the whitened residual.
    x = cycle_ms(5000, 0.3, 0.3, phi=0.7)(40_000, np.random.default_rng(0))
    budget = FalseAlarmBudget(per_million=100)
    det = LatencyAnomaly(seed=0, budget=budget)
    fired = det.update_many(x).tolist()
    assert det._context.long and det._season_whitener is not None and det._season_whitener.rho >= 0.25
    assert fired and fired == _per_event_long_residual(budget).update_many(x).tolist()


def test_snapshot_mid_block_round_trips():
    # Restored with a block of residuals open and the block reference in use, it goes on alarming
    # exactly as the detector it was taken from (a level shift judged on block medians).
    x = _cycle(4, 12_000, 288, 0.3, 0.3)
    x[9_000:] *= 1.3
    det = LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100))
    det.update_many(x[:8_003])
    assert det._season_blocks.ready and len(det._season_blocks._open) % det.season_block
    restored = LatencyAnomaly.restore(det.snapshot())
    kinds = []
    for v in x[8_003:]:
        det.update(v)
        restored.update(v)
        assert (restored.fired, restored.score) == (det.fired, det.score)
        if det.fired:
            kinds.append(det.evidence()["kind"])
    assert kinds and set(kinds) == {"seasonal_shift"}


def test_snapshot_from_before_residual_blocks_restores_scoring_per_event():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = cycle_ms(288, 0.3, 0.3, phi=0.7)(16_000, np.random.default_rng(1))
    det, ref = (LatencyAnomaly(seed=0, budget=FalseAlarmBudget(per_million=100), season_block=0) for _ in range(2))
    det.update_many(x[:8_000])
    ref.update_many(x[:8_000])
    for attr in ("season_block", "_season_blocks", "_h_season_blocks", "_plain_until_season_ready"):
        del det.__dict__[attr]
    ref._plain_until_season_ready = False  # the predecessor turned the plain views off at once
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old.season_block == 0 and old._season_blocks is None and not old._plain_until_season_ready
    fired = old.update_many(x[8_000:]).tolist()
    assert fired == ref.update_many(x[8_000:]).tolist() and fired


def test_snapshot_from_before_long_residual_blocks_restores_scoring_per_event():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _cycle(0, 21_000, 5000, 0.3, 0.3)
    x[20_000:] *= 1.3
    det, ref = LatencyAnomaly(seed=0), _per_event_long_residual()
    det.update_many(x[:15_000])
    ref.update_many(x[:15_000])
    assert det._context.long
    del det.__dict__["_long_season_blocks"]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert not old._long_season_blocks
    fired = old.update_many(x[15_000:]).tolist()
    assert fired == ref.update_many(x[15_000:]).tolist()
    assert LatencyAnomaly.restore(LatencyAnomaly(seed=0).snapshot())._long_season_blocks


def test_snapshot_from_before_level_blocks_restores_scoring_per_event():
    import pickle

    from models.base import SNAPSHOT_VERSION

    x = _ar1_latency(0.9, 15_000, 2)
    det, ref = LatencyAnomaly(seed=0), LatencyAnomaly(seed=0, level_block=0)
    det.update_many(x[:3_000])
    ref.update_many(x[:3_000])
    for attr in ("level_block", "_level_blocks", "_level_by_blocks", "_h_level_blocks"):
        del det.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old.level_block == 0 and old._level_blocks is None
    fired = old.update_many(x[3_000:]).tolist()
    assert fired == ref.update_many(x[3_000:]).tolist() and fired


def test_snapshot_from_before_residual_blocks_keeps_its_behaviour_when_a_floor_is_found():
    # A floor found starts the detector over from a clone; what an old snapshot restored with
    # (the plain views off as soon as a period holds) must survive that, as its thresholds do.
    import pickle

    from models.anomaly.floor import PLAIN
    from models.base import SNAPSHOT_VERSION

    x = 5.0 + np.random.default_rng(0).lognormal(1.0, 0.5, 4_000)
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:1_000])
    for attr in ("season_block", "_season_blocks", "_h_season_blocks", "_plain_until_season_ready"):
        del det.__dict__[attr]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    old.update_many(x[1_000:])
    assert old._map != PLAIN  # the floor was found and the detector started over
    assert old.season_block == 0 and not old._plain_until_season_ready and old._h_season_blocks == old._h_season


def test_plain_views_stay_in_use_until_the_residuals_reference_is_ready():
    # A period found, its residual's reference not yet ready (128 residuals): a level shift there
    # used to go unseen, the value's level_shift already off and the residual not yet ranked.
    x = _cycle(2, 6_000, 288, 0.3, 0.3)
    probe = LatencyAnomaly(seed=0)
    found = next(i for i, v in enumerate(x) if probe.update(v) is None and probe.evidence()["period"] is not None)
    x[found + 10 :] *= 4.0
    det = LatencyAnomaly(seed=0)
    fired = det.update_many(x[: found + 100])
    assert fired.size and found + 10 <= fired[0] < found + 100
    blind = LatencyAnomaly(seed=0)
    blind._plain_until_season_ready = False
    assert not blind.update_many(x[: found + 100]).size


def test_floor_is_looked_for_as_soon_as_the_reference_is_full():
    # AR(1) 0.97 latency over a 5 ms floor: crossings before event 2,000 are kept out of the raw
    # reference, which is not full at 2,000.  The floor was then looked for only at 4,000, and in
    # between the values were scored in asinh(x), where their spread rises and falls with the level.
    x = _ar1_latency(0.97, 3000, 0)
    det = LatencyAnomaly(seed=0)
    found_at = short_by = None
    for i, v in enumerate(x):
        det.update(v)
        if i == det.window - 1:
            short_by = det.window - len(det._raw_reference)
        if found_at is None and det.evidence()["floor"] is not None:
            found_at = i
    assert short_by == 3  # three crossings kept out
    assert found_at is not None and 2000 <= found_at < 2010  # 4,000 before
    assert abs(det.evidence()["floor"] - 5.0) < 0.2


def test_warmup_raises_nothing_within_it_and_changes_nothing_else():
    x = lognormal(31, n=4000)
    x[500] *= 30.0  # within the warm-up
    x[2500] *= 30.0  # after it
    plain, warm = LatencyAnomaly(seed=0), LatencyAnomaly(seed=0, warmup=2000)
    scores = []
    fired_plain = plain.update_many(x[:2000]).tolist()
    for v in x[:2000]:
        warm.update(v)
        scores.append(warm.score)
    assert 500 in fired_plain
    assert max(scores) < warm.threshold  # the crossing at 500 ranks just below it
    # The crossing was kept out as usual: from then on both go on alike.
    assert warm.update_many(x[2000:]).tolist() == plain.update_many(x[2000:]).tolist() == [500]
    assert warm.evidence() == plain.evidence()


@pytest.mark.parametrize("bad", [-1, 1.5, True, None])
def test_bad_warmup_is_rejected(bad):
    with pytest.raises(ValueError, match="warmup"):
        LatencyAnomaly(warmup=bad)


def test_snapshot_from_before_the_warmup_restores_with_none():
    import pickle

    from models.base import SNAPSHOT_VERSION

    det = LatencyAnomaly(seed=0, warmup=500)
    det.update_many(lognormal(5, n=300))
    del det.__dict__["warmup"]
    old = LatencyAnomaly.restore(pickle.dumps((SNAPSHOT_VERSION, det)))
    assert old.warmup == 0


def test_a_period_found_net_of_a_floor_is_looked_for_again_without_it():
    # The floor found at 4,014 was fitted to the cycle's levels; net of it, the autocorrelation of
    # 2.8 cycles peaked at 1,365 instead of 1,440.  The floor yielded to that period, which stayed until
    # the next look (7,096): the residual against the wrong phase raised seasonal_shift 5 times.
    x = cycle_ms(1440, 1.0, 0.1)(12_000, np.random.default_rng(4))
    det = LatencyAnomaly(seed=0)
    det.update_many(x[:4050])
    assert det.evidence()["floor"] is not None and det.evidence()["period"] is None
    fired = det.update_many(x[4050:7000])
    assert det.evidence()["floor"] is None and det.evidence()["period"] is None
    assert fired.size <= 1  # one level_shift (4,735); 6 seasonal_shift while the period was 1,365
    det.update_many(x[7000:7200])
    assert det.evidence()["period"] in range(1430, 1451)


def test_a_refuted_floor_is_looked_for_again_a_window_later():
    # AR(1) 0.97 latency over a 5 ms floor: the floor fitted at 2,000 (5.05 ms) is refuted at 4,325 by
    # a value further below it than the lowest value it was fitted to lay above it.  It was never looked
    # for again, and the values were scored in asinh(x) from then on (5 more alarms by 12,000 at the
    # default budget); a window later it is found again, with that value in the reference.
    stream = next(s for s in STREAMS if s.name == "latency_wandering_ar0.97")
    x = stream.make(8000, np.random.default_rng(12))
    det = LatencyAnomaly(seed=0)
    floors: list[tuple[int, float]] = []
    for i, v in enumerate(x):
        det.update(v)
        if not floors or floors[-1][1] != det._map.floor:
            floors.append((i, det._map.floor))
    assert [i for i, _ in floors] == [0, 2000, 4325, 6325]
    (_, first), (_, none), (_, again) = floors[1:]
    assert abs(first - 5.05) < 0.01 and none == 0.0 and abs(again - 5.0) < 0.05 and again < first
