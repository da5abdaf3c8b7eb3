"""GpuAnomaly and the DCGM helper: hard signals, statistics, malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from models.anomaly import GpuAnomaly, dcgm_observation
from models.anomaly.dcgm import DEFAULT_THROTTLE_MASK, FIELDS, OBSERVATION_FIELDS
from models.calibration import FalseAlarmBudget

COL = {name: i for i, name in enumerate(OBSERVATION_FIELDS)}


def busy(n: int, seed: int = 0) -> np.ndarray:
    """A busy GPU: noisy utilisation, memory, temperature, power; fixed clocks; no errors."""
    rng = np.random.default_rng(seed)
    obs = np.full((n, len(OBSERVATION_FIELDS)), np.nan)
    obs[:, COL["gpu_util"]] = rng.normal(85.0, 4.0, n)
    obs[:, COL["mem_used_fraction"]] = rng.normal(0.6, 0.02, n)
    obs[:, COL["temperature"]] = rng.normal(70.0, 1.5, n)
    obs[:, COL["power"]] = rng.gamma(50.0, 6.0, n)
    obs[:, COL["sm_clock"]] = 1410.0
    obs[:, COL["mem_clock"]] = 1215.0
    obs[:, COL["clocks_event_reasons"]] = 0.0
    obs[:, COL["xid"]] = 0.0
    obs[:, COL["ecc_uncorrectable"]] = 0.0
    return obs


#: SM clocks of a real H200 serving requests (MHz) and how often each was read.
_SERVING_CLOCKS = ((1965.0, 0.55), (1980.0, 0.23), (1950.0, 0.08), (1935.0, 0.05), (1920.0, 0.03), (1905.0, 0.02),
                   (1875.0, 0.02), (1845.0, 0.01), (1650.0, 0.01))  # fmt: skip


def serving(n: int, seed: int = 0) -> np.ndarray:
    """A GPU serving requests of random size, as on a real H200: utilisation 8-46 % from one
    sample to the next, power with it, the SM clock mostly 1,950-1,980 MHz with dips, 40-52 C."""
    rng = np.random.default_rng(seed)
    obs = busy(n, seed)
    util = rng.uniform(8.0, 46.0, n).round()
    obs[:, COL["gpu_util"]] = util
    obs[:, COL["power"]] = np.round(300.0 + 2.5 * util + rng.normal(0.0, 10.0, n))
    clocks, weights = zip(*_SERVING_CLOCKS)
    obs[:, COL["sm_clock"]] = rng.choice(clocks, n, p=np.array(weights) / sum(weights))
    obs[:, COL["mem_used_fraction"]] = 0.12
    obs[:, COL["temperature"]] = np.round(45.0 + rng.normal(0.0, 2.5, n))
    return obs


def idle(n: int, seed: int = 0) -> np.ndarray:
    """An idle GPU, as the real H200 before its load: 0 %, 79 W, SM clock 345 MHz, 34 C."""
    obs = busy(n, seed)
    obs[:, COL["gpu_util"]], obs[:, COL["sm_clock"]], obs[:, COL["mem_used_fraction"]] = 0.0, 345.0, 0.0
    obs[:, COL["power"]] = np.round(79.0 + np.random.default_rng(seed + 50).normal(0.0, 0.3, n), 1)
    obs[:, COL["temperature"]] = 34.0
    return obs


def saturate(obs: np.ndarray, at: int, seed: int = 0) -> np.ndarray:
    """From sample ``at``, over five samples, the GPU saturates: utilisation 99-100 %, power 690 W,
    the SM clock 1,440-1,485 MHz under the power cap, 57 C (the real H200's numbers)."""
    rng = np.random.default_rng(seed + 100)
    n = len(obs) - at
    sat = obs[at:].copy()
    sat[:, COL["gpu_util"]] = rng.choice([99.0, 100.0], n)
    sat[:, COL["power"]] = np.round(690.0 + rng.normal(0.0, 2.0, n))
    sat[:, COL["sm_clock"]] = rng.choice([1440.0, 1455.0, 1470.0, 1485.0], n)
    sat[:, COL["temperature"]] = np.round(57.0 + rng.normal(0.0, 0.5, n))
    w = np.minimum(1.0, np.arange(1, n + 1) / 5.0)[:, None]
    out = obs.copy()
    out[at:] = (1.0 - w) * obs[at:] + w * sat
    return out


def alarms(det: GpuAnomaly, obs: np.ndarray) -> list[tuple[int, str]]:
    """(sample, kind) of every alarm ``det`` raises on ``obs``."""
    out = []
    for i, o in enumerate(obs):
        det.update(o)
        if det.fired:
            out.append((i, det.evidence()["kind"]))
    return out


def warmed(n: int = 300, **kwargs) -> GpuAnomaly:
    det = GpuAnomaly(seed=0, **kwargs)
    det.update_many(busy(n))
    return det


def sample(**changes: float) -> np.ndarray:
    obs = busy(1, seed=99)[0]
    for name, value in changes.items():
        obs[COL[name]] = value
    return obs


# -- hard signals -----------------------------------------------------------------


def test_new_xid_fires_once_per_code():
    det = warmed()
    det.update(sample(xid=79))
    assert det.fired and det.score == 1.0 and det.evidence()["hard_signals"] == ["xid_79"]
    assert det.evidence()["kind"] == "hard_signal"
    det.update(sample(xid=79))  # DCGM keeps reporting the last XID: not a new one
    assert not det.fired
    det.update(sample(xid=48))
    assert det.evidence()["hard_signals"] == ["xid_48"]
    det.update(sample(xid=0))
    assert not det.fired


def test_throttle_bits_rising_edge_and_default_mask():
    det = warmed()
    det.update(sample(clocks_event_reasons=0x4))  # SW power cap: normal under load
    assert not det.fired
    det.update(sample(clocks_event_reasons=0x4 | 0x40 | 0x20))
    assert det.fired and det.evidence()["hard_signals"] == ["throttle_sw_thermal", "throttle_hw_thermal"]
    det.update(sample(clocks_event_reasons=0x40))  # still throttling: no new alarm
    assert not det.fired
    det.update(sample(clocks_event_reasons=0x40 | 0x80))
    assert det.evidence()["hard_signals"] == ["throttle_hw_power_brake"]
    assert DEFAULT_THROTTLE_MASK == 0xE8


def test_throttle_mask_setting():
    det = warmed(throttle_mask=0x4)
    det.update(sample(clocks_event_reasons=0x4))
    assert det.evidence()["hard_signals"] == ["throttle_sw_power_cap"]


def test_ecc_increase_fires_first_reading_and_reset_do_not():
    det = GpuAnomaly(seed=0)
    det.update(sample(ecc_uncorrectable=3))  # first reading: unknown before
    assert not det.fired
    det.update(sample(ecc_uncorrectable=3))
    assert not det.fired
    det.update(sample(ecc_uncorrectable=4))
    assert det.fired and det.evidence()["hard_signals"] == ["ecc_uncorrectable"]
    det.update(sample(ecc_uncorrectable=0))  # counter reset
    assert not det.fired


def test_framebuffer_nearly_full():
    det = warmed(fb_full=0.9)
    det.update(sample(mem_used_fraction=0.91))
    assert det.fired and "fb_nearly_full" in det.evidence()["hard_signals"]
    det.update(sample(mem_used_fraction=0.92))
    assert "fb_nearly_full" not in det.evidence()["hard_signals"]


def test_hard_signals_work_without_warm_up_or_other_fields():
    det = GpuAnomaly(seed=0)
    obs = np.full(len(OBSERVATION_FIELDS), np.nan)
    obs[COL["xid"]] = 13.0
    det.update(obs)
    assert det.fired


# -- statistical part -------------------------------------------------------------


def test_golden_utilisation_drop_names_the_field():
    obs = busy(900, seed=1)
    obs[700:, COL["gpu_util"]] = np.random.default_rng(2).normal(20.0, 4.0, 200)
    det = GpuAnomaly(seed=0)
    fired = det.update_many(obs)
    assert fired[0] == 700
    assert det.evidence()["fields"] == [] or det.evidence()["fields"][0]["field"] == "gpu_util"
    det2 = GpuAnomaly(seed=0)
    det2.update_many(obs[:701])
    assert det2.evidence()["fields"][0]["field"] == "gpu_util"
    assert det2.evidence()["kind"] == "jump"


def test_clock_drop_is_a_jump():
    obs = busy(800, seed=3)
    obs[600:, COL["sm_clock"]] = 1100.0  # clocks pulled down, for good
    det = GpuAnomaly(seed=0)
    assert det.update_many(obs[:601]).tolist() == [600]
    assert det.evidence()["kind"] == "jump"
    assert det.evidence()["fields"][0]["field"] == "sm_clock"
    assert det.update_many(obs[601:]).size == 0  # one drop, one alarm


def test_a_crossing_within_the_warmup_is_learned_not_raised():
    obs = busy(1_400, seed=3)
    obs[600:, COL["sm_clock"]] = 1100.0  # within a warm-up of 1,000: learned
    obs[1_200:, COL["sm_clock"]] = 700.0  # after it: raised (against the regime re-learned since 600)
    assert alarms(GpuAnomaly(seed=0), obs) == [(600, "jump"), (1_207, "level_shift")]
    det = GpuAnomaly(seed=0, warmup=1_000)
    assert det.update_many(obs[:601]).size == 0
    assert 0.45 < det.score < 0.5 and det.evidence()["kind"] == "none"  # just below the threshold
    assert alarms(det, obs[601:]) == [(606, "level_shift")]  # sample 1,207


@pytest.mark.parametrize("warmup", [3_000, 3_001, 9_500])  # sample 3,000 the first after it, or the last in it
def test_after_the_warmup_the_alarms_are_those_without_one(warmup):
    obs = np.vstack([jobs(12_000, 3_000, seed=2), saturate(serving(3_000), 2_500)])
    every = GpuAnomaly(seed=0).update_many(obs).tolist()
    assert every == [3_000, 6_000, 9_000, 12_000, 14_507]
    assert GpuAnomaly(seed=0, warmup=warmup).update_many(obs).tolist() == [a for a in every if a >= warmup]


def test_hard_signals_fire_within_the_warmup():
    det = GpuAnomaly(seed=0, warmup=1_000)
    det.update_many(busy(50))
    det.update(sample(xid=79))
    assert det.fired and det.evidence()["hard_signals"] == ["xid_79"]


def test_no_alarm_on_strongly_autocorrelated_telemetry():
    rng = np.random.default_rng(1)
    n, phi = 20_000, 0.99
    obs = busy(n, seed=8)
    for name, mean, sd in (("gpu_util", 85.0, 4.0), ("temperature", 70.0, 1.5), ("power", 300.0, 15.0)):
        e = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
        ar = np.empty(n)
        ar[0] = 0.0
        for t in range(1, n):
            ar[t] = phi * ar[t - 1] + e[t]
        obs[:, COL[name]] = mean + ar
    assert GpuAnomaly(seed=0).update_many(obs).size == 0


def test_missing_fields_are_skipped():
    obs = busy(600, seed=4)
    obs[::3, COL["temperature"]] = np.nan
    obs[:, COL["power"]] = np.nan
    det = GpuAnomaly(seed=0)
    assert det.update_many(obs).size == 0
    assert "power" not in det._surprisal


def test_false_alarms_on_stationary_samples():
    # 60k independent samples with Pareto-tailed power: 0.06 alarms expected at 1 per million,
    # 3 at 50 per million.
    obs = busy(60_000, seed=5)
    obs[:, COL["power"]] = 250.0 * (1.0 + np.random.default_rng(6).pareto(2.0, 60_000))
    assert GpuAnomaly(seed=0).update_many(obs).size == 0
    assert GpuAnomaly(budget=FalseAlarmBudget(50.0), seed=0).update_many(obs).size <= 10


def test_rare_recurring_drop_is_not_new_to_one_phase():
    # Utilisation drops to 0 for single samples 0.2% of the time, with no change: each drop is
    # missing from one phase's 1,000-step window now and then (about e^-2 of the time), and
    # its step back after an alarm used to go unlearned, so drops and returns alarmed again
    # and again (31 in 60k samples at 100 per million, 6 expected).
    rng = np.random.default_rng(0)
    n = 60_000
    obs = busy(n, seed=10)
    util = np.round(rng.normal(92.0, 3.0, n))
    util[rng.random(n) < 0.002] = 0.0
    obs[:, COL["gpu_util"]] = util
    obs[:, COL["power"]] = np.round(rng.normal(300.0, 5.0, n))
    assert GpuAnomaly(budget=FalseAlarmBudget(100.0), seed=0).update_many(obs).size <= 12


def test_step_back_after_an_alarm_is_learned_not_scored():
    obs = busy(400, seed=11)
    obs[300, COL["gpu_util"]] = 0.0
    det = GpuAnomaly(seed=0)
    assert det.update_many(obs[:301]).tolist() == [300]
    refs = [det._refs[phase][FIELDS.index("gpu_util")] for phase in (0, 1)]
    assert max(ref.highest for ref in refs) < 1.0  # no step up that large yet
    assert det.update_many(obs[301:]).size == 0  # the step back is not a second alarm...
    assert max(ref.highest for ref in refs) > 4.0  # ...but it is in the reference


def jobs(n: int, dwell: int, seed: int = 0) -> np.ndarray:
    """Jobs start and stop every ``dwell`` samples: busy (utilisation ~95, 300 W, boost clocks,
    temperature climbing to 75 C) and idle (0%, 60 W, idle clocks, cooling to 40 C)."""
    rng = np.random.default_rng(seed)
    on = (np.arange(n) // dwell) % 2 == 0
    obs = busy(n, seed=seed)
    obs[:, COL["gpu_util"]] = np.where(on, np.round(rng.normal(95.0, 2.0, n)), 0.0)
    obs[:, COL["mem_used_fraction"]] = np.where(on, 0.8, 0.05)
    obs[:, COL["power"]] = np.round(np.where(on, rng.normal(300.0, 8.0, n), rng.normal(60.0, 1.0, n)))
    obs[:, COL["sm_clock"]] = np.where(on, 1410.0, 210.0)
    obs[:, COL["mem_clock"]] = np.where(on, 1215.0, 405.0)
    temp = np.empty(n)
    temp[0] = 75.0
    for t in range(1, n):
        temp[t] = temp[t - 1] + 0.05 * ((75.0 if on[t] else 40.0) - temp[t - 1]) + rng.normal(0.0, 0.3)
    obs[:, COL["temperature"]] = np.round(temp)
    return obs


def test_a_job_starting_or_stopping_is_one_incident():
    # 9 transitions, each new (none in the last 2 * window samples).  Without the refractory
    # span each raised about 3 alarms: the utilisation jump, then the new noise of power and
    # utilisation and the temperature's climb or fall, judged against the other state's steps.
    # With the span alone a job start after a long idle still raised a second, "volatility"
    # alarm 100-400 samples later (12-14 alarms on seeds 0, 2, 4): the span was over while the
    # references still held idle steps only.  Re-learning after the alarm judges the job's noise
    # against its own steps: one alarm per transition, on the transition.
    for seed in (0, 2, 4):
        obs = jobs(30_000, 3_000, seed)
        assert GpuAnomaly(seed=0).update_many(obs).tolist() == list(range(3_000, 30_000, 3_000))
    obs = jobs(30_000, 3_000)
    assert GpuAnomaly(relearn_after_alarm=False, seed=0).update_many(obs).size <= 14
    assert GpuAnomaly(refractory=0, relearn_after_alarm=False, seed=0).update_many(obs).size > 18


@pytest.mark.parametrize("lag", [50, 150, 400])
def test_a_real_fault_soon_after_a_job_start_is_a_second_incident(lag):
    # A job starts at 6,000 after 3,000 idle samples; `lag` samples later it hangs: utilisation
    # collapses to 0 and power falls to 90 W (clocks stay up).  Re-learning must not hide it:
    # it alarms on the sample it happens.  Before re-learning the one at 50 samples was a
    # repeat of the start (both at the CUSUM's cap, within the refractory span) and was lost.
    start, fault = 6_000, 6_000 + lag
    obs = jobs(fault + 300, 3_000, seed=1)
    obs[fault:, COL["gpu_util"]] = 0.0
    obs[fault:, COL["power"]] = np.round(np.random.default_rng(7).normal(90.0, 2.0, 300))
    det = GpuAnomaly(seed=0)
    fired = det.update_many(obs)
    assert fired[fired >= start].tolist() == [start, fault]
    assert lag >= det.relearn_span
    if lag == 50:
        old = GpuAnomaly(relearn_after_alarm=False, seed=0).update_many(obs)
        assert old[old >= start].tolist() == [start]


def test_the_ramp_of_a_job_start_does_not_hide_the_job_end():
    # As on the real H100 (tests/data/nvml_trace/h100): clocks boost a sample before the job,
    # utilisation reads 1, 0, then 99, and power climbs over a few samples.  Those steps came
    # right after the start's alarm; in the fresh references they widened the tails so far that
    # the job's end 200 samples later (utilisation 99 -> 0) was no longer new.  The steps of the
    # first samples after an alarm stay out of the fresh references.
    obs = jobs(6_400, 3_000, seed=3)[3_000:]  # 3,000 idle samples, then a job
    start, end = 3_000, 3_200
    obs[start : start + 3, COL["gpu_util"]] = (1.0, 0.0, 0.0)
    obs[start : start + 6, COL["power"]] = (70.0, 95.0, 140.0, 190.0, 240.0, 280.0)
    obs[end:, COL["gpu_util"]] = 0.0
    obs[end:, COL["power"]] = np.round(np.random.default_rng(8).normal(60.0, 1.0, len(obs) - end))
    assert GpuAnomaly(seed=0).update_many(obs).tolist() == [start, end]


@pytest.mark.parametrize("cut", [3_010, 3_100, 4_000])  # incident open, re-learned, fresh references full
def test_snapshot_while_relearning_round_trips(cut):
    obs = jobs(12_000, 3_000)
    det = GpuAnomaly(seed=0)
    det.update_many(obs[:cut])
    assert det._fresh is not None
    restored = GpuAnomaly.restore(det.snapshot())
    assert restored.update_many(obs[cut:]).tolist() == det.update_many(obs[cut:]).tolist()
    assert restored.score == det.score


def test_snapshot_from_before_the_refractory_span_alarms_on_every_crossing():
    # Such a snapshot is also from before re-learning: it restores with neither.
    det, plain = GpuAnomaly(seed=0), GpuAnomaly(refractory=0, relearn_after_alarm=False, seed=0)
    for d in (det, plain):
        d.update_many(busy(200))
    for attr in ("refractory", "_crossings", "_crossed", "relearn_after_alarm", "_fresh", "_alarm_n"):
        del det.__dict__[attr]
    old = GpuAnomaly.restore(det.snapshot())
    assert old.refractory == 0 and not old.relearn_after_alarm
    obs = jobs(20_000, 3_000)
    assert old.update_many(obs).tolist() == plain.update_many(obs).tolist()


def test_snapshot_from_before_relearning_keeps_its_alarms():
    det, plain = GpuAnomaly(seed=0), GpuAnomaly(relearn_after_alarm=False, seed=0)
    for d in (det, plain):
        d.update_many(busy(200))
    for attr in ("relearn_after_alarm", "_fresh", "_alarm_n"):
        del det.__dict__[attr]
    old = GpuAnomaly.restore(det.snapshot())
    assert not old.relearn_after_alarm
    obs = jobs(20_000, 3_000)
    assert old.update_many(obs).tolist() == plain.update_many(obs).tolist()


# -- level view (steps between block medians) --------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_serving_gpu_that_saturates_is_a_level_shift(seed):
    obs = saturate(serving(3_000, seed), 2_500, seed)
    assert alarms(GpuAnomaly(seed=0), obs) == [(2_507, "level_shift")]  # none in 2,500 samples of serving noise
    det = GpuAnomaly(seed=0)
    det.update_many(obs[:2_508])
    assert det.fired and {f["field"] for f in det.evidence()["fields"]} & {"sm_clock", "power", "gpu_util"}
    # Each single step of the five-sample ramp is within the serving noise: unseen without the level view.
    assert alarms(GpuAnomaly(block=0, seed=0), obs) == []


def test_rare_busy_blocks_of_a_gpu_mostly_idle_are_not_level_shifts():
    """Utilisation 0 nine samples in ten: a block's median leaves 0 about once in 200 blocks, so the
    level view's steps are nearly all 0 and their few extremes say nothing of the tail's scale (an
    exponential tail fitted to them raised 50 and 30 alarms per 100k samples at a budget of 100)."""
    rng = np.random.default_rng(5)
    obs = busy(50_000, seed=5)
    obs[:, COL["gpu_util"]] = np.where(rng.random(50_000) < 0.9, 0.0, np.round(rng.uniform(1.0, 100.0, 50_000)))
    found = alarms(GpuAnomaly(budget=FalseAlarmBudget(100.0), seed=0), obs)
    assert [kind for _, kind in found].count("level_shift") == 0 and len(found) <= 15, found


@pytest.mark.parametrize("seed", [0, 1])
def test_idle_serving_saturated_idle_is_three_incidents(seed):
    """After each alarm the level view forgets the regime's block steps and learns the new
    regime's: the blocks that still straddle the change would otherwise read as more level
    shifts (without the restart, more alarms right after the saturation and the job's end)."""
    after = idle(1_000, seed + 7)
    after[:, COL["sm_clock"]], after[:, COL["power"]] = 1980.0, 122.0
    obs = np.vstack([idle(3_000, seed), saturate(serving(3_000, seed), 1_500, seed), after])
    found = alarms(GpuAnomaly(seed=0), obs)
    assert [kind for _, kind in found] == ["jump", "level_shift", "jump"], found
    assert found[0][0] == 3_000 and 4_500 < found[1][0] <= 4_510 and found[2][0] == 6_000


@pytest.mark.parametrize("dwell", [150, 500])
def test_a_change_that_recurs_is_not_a_level_shift_each_time(dwell):
    """Jobs starting and stopping every few hundred samples: the level view's steps are also ranked
    against all block steps of the last 2,000 samples, so the transitions, seen there, are not
    new each time the regime restarts (against the regime's steps alone: 37 alarms at 500)."""
    assert alarms(GpuAnomaly(seed=0), jobs(20_000, dwell)) == alarms(GpuAnomaly(block=0, seed=0), jobs(20_000, dwell))


@pytest.mark.parametrize("lag", [150, 380, 400, 800])
def test_a_clock_drop_after_a_job_start_is_a_level_shift_once_the_job_is_learned(lag):
    """A job starts at 6,000; ``lag`` samples later its SM clock, held at 1,410 MHz, drops 30 %.
    The single steps miss it at any lag (the job start's clock step, in their window, is larger);
    the level view sees it from 400 samples after the start (seeds 1-3 alike): the clock has not
    moved in the job, so any step of it is new on the scale floor, and by then the reference of
    the job's block steps (ready from 24 + 256 samples) holds enough of them for the half-way
    step to cross (at 300 its ratio is 0.98, and once learned it hides the full step)."""
    start, fault = 6_000, 6_000 + lag
    obs = jobs(fault + 600, 3_000, seed=1)
    obs[fault:, COL["sm_clock"]] = np.round(0.7 * 1410.0)
    found = [a for a in alarms(GpuAnomaly(seed=0), obs) if a[0] >= start]
    assert found == ([(start, "jump"), (fault + 3, "level_shift")] if lag >= 400 else [(start, "jump")])
    assert [a for a in alarms(GpuAnomaly(block=0, seed=0), obs) if a[0] >= start] == [(start, "jump")]


def test_snapshot_from_before_the_level_view_keeps_its_alarms():
    det, plain = GpuAnomaly(block=0, seed=0), GpuAnomaly(block=0, seed=0)
    for d in (det, plain):
        d.update_many(busy(200))
    for attr in ("block", "_blocks", "_h_block", "_block_ratio", "_block_surprisal"):
        del det.__dict__[attr]
    old = GpuAnomaly.restore(det.snapshot())
    assert old.block == 0 and old._blocks is None
    obs = np.vstack([jobs(20_000, 3_000), saturate(serving(3_000), 2_500)])
    assert old.update_many(obs).tolist() == plain.update_many(obs).tolist()


def test_snapshot_from_before_the_warmup_restores_with_none():
    det = GpuAnomaly(seed=0)
    det.update_many(busy(200))
    del det.__dict__["warmup"]
    old = GpuAnomaly.restore(det.snapshot())
    assert old.warmup == 0
    obs = busy(800, seed=3)
    obs[600:, COL["sm_clock"]] = 1100.0
    assert old.update_many(obs).tolist() == [600]


@pytest.mark.parametrize("cut", [2_490, 2_503, 2_600])  # before the change, inside its blocks, after the alarm
def test_snapshot_in_the_level_view_round_trips(cut):
    obs = saturate(serving(3_000), 2_500)
    det = GpuAnomaly(seed=0)
    det.update_many(obs[:cut])
    restored = GpuAnomaly.restore(det.snapshot())
    assert restored.update_many(obs[cut:]).tolist() == det.update_many(obs[cut:]).tolist()


# -- malformed input and parameters --------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [np.zeros(3), np.zeros((2, len(OBSERVATION_FIELDS))), "x", None, np.r_[np.inf, np.zeros(len(OBSERVATION_FIELDS) - 1)]],
)
def test_malformed_observations_raise(bad):
    det = warmed(200)
    before = det.snapshot()
    with pytest.raises(ValueError):
        det.update(bad)
    assert det.snapshot() == before


@pytest.mark.parametrize(
    "kwargs, name",
    [({"fb_full": 0.0}, "fb_full"), ({"fb_full": 1.5}, "fb_full"), ({"throttle_mask": 0x200}, "throttle_mask"),
     ({"shift_k": 0.9}, "shift_k"), ({"window": 10}, "window"), ({"budget": None}, "budget"),
     ({"relearn_after_alarm": 1}, "relearn_after_alarm"), ({"block": 1}, "block"), ({"block": -2}, "block"),
     ({"block": 4.0}, "block"), ({"warmup": -1}, "warmup"), ({"warmup": 2.5}, "warmup")],
)
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GpuAnomaly(**kwargs)


# -- DCGM helper -------------------------------------------------------------------


def test_dcgm_observation_maps_fields():
    obs = dcgm_observation(
        {
            "DCGM_FI_DEV_GPU_UTIL": "87",
            "DCGM_FI_DEV_FB_USED": 30_000,
            "DCGM_FI_DEV_FB_FREE": 10_000,
            "DCGM_FI_DEV_GPU_TEMP": 71,
            "DCGM_FI_DEV_POWER_USAGE": 312.5,
            "DCGM_FI_DEV_SM_CLOCK": 1410,
            "DCGM_FI_DEV_MEM_CLOCK": 1215,
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": 0x40,
            "DCGM_FI_DEV_XID_ERRORS": 79,
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": 2,
            "unrelated": "ignored",
        }
    )
    assert dict(zip(OBSERVATION_FIELDS, obs.tolist())) == {
        "gpu_util": 87.0, "mem_used_fraction": 0.75, "temperature": 71.0, "power": 312.5, "sm_clock": 1410.0,
        "mem_clock": 1215.0, "clocks_event_reasons": 64.0, "xid": 79.0, "ecc_uncorrectable": 2.0,
    }


def test_dcgm_observation_fallbacks_blanks_and_garbage():
    obs = dcgm_observation(
        {
            "DCGM_FI_DEV_FB_USED": 100,
            "DCGM_FI_DEV_FB_TOTAL": 400,
            "DCGM_FI_DEV_FB_FREE": 0,  # ignored: FB_TOTAL wins
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": 8,  # legacy name
            "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": 1,  # aggregate when volatile is absent
            "DCGM_FI_DEV_GPU_TEMP": 2147483632,  # DCGM int32 blank
            "DCGM_FI_DEV_POWER_USAGE": "n/a",
            "DCGM_FI_DEV_GPU_UTIL": float("nan"),
        }
    )
    d = dict(zip(OBSERVATION_FIELDS, obs.tolist()))
    assert d["mem_used_fraction"] == 0.25 and d["clocks_event_reasons"] == 8.0 and d["ecc_uncorrectable"] == 1.0
    assert all(np.isnan(d[f]) for f in ("temperature", "power", "gpu_util", "sm_clock", "xid"))
    assert np.isnan(dcgm_observation({})).all()
    assert len(FIELDS) == 6
