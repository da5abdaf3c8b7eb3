"""GPU anomaly detector: per-field conformal p-values of steps, CUSUMs, and hard signals."""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from models.anomaly.conformal import ConformalReference, surprisal
from models.anomaly.cusum_calibration import check_reference_value, cusum_threshold
from models.anomaly.dcgm import DEFAULT_THROTTLE_MASK, FIELDS, OBSERVATION_FIELDS
from models.anomaly.gpu_hard_signals import check_hard_signal_settings, hard_signals, no_signals_yet
from models.anomaly.gpu_levels import BlockSteps
from models.anomaly.gpu_snapshots import upgrade
from models.anomaly.refractory import BELOW_ONE, Crossings, repeats
from models.base import Detector, check_int
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget, check_budget

__all__ = ["GpuAnomaly"]

#: Each field's resolution, in FIELDS order: utilisation %, memory fraction, degrees C,
#: watts, MHz, MHz.  Fields are scored as ``asinh(value / resolution)``: log-like above
#: it (a heavy upper tail becomes exponential, as the tail fit assumes), linear near 0.
_RESOLUTION = np.array([1.0, 0.005, 1.0, 2.0, 15.0, 15.0])
#: Floor on the tail scale in those units (about a 1% relative change).
_MIN_SCALE = 0.01
#: References per phase (outer) and field (inner).
_Refs = list[list[ConformalReference]]


def _combined_surprisal(ps: dict[str, float]) -> float:
    """Surprisal of the fields' p-values combined with Bonferroni (``m * min p``, valid however
    the fields are correlated)."""
    return surprisal(min(1.0, len(ps) * min(ps.values())))


class GpuAnomaly(Detector):
    """Multivariate anomalies of one GPU, plus hard signals that fire at once.

    An observation is a 1-D array in :data:`~models.anomaly.dcgm.OBSERVATION_FIELDS`
    order (build it with :func:`~models.anomaly.dcgm.dcgm_observation`); NaN means
    missing and that field is skipped.  GPU telemetry is strongly autocorrelated
    (temperature and power drift over minutes), so levels are not exchangeable and
    a test on them would overshoot any budget; the detector scores *steps*.  Each
    statistical field (utilisation, memory used fraction, temperature, power, SM
    and memory clocks), as ``asinh(value / resolution)`` (log-like: a heavy upper
    tail becomes exponential), is differenced over disjoint pairs of samples in two
    phases, like :class:`~models.anomaly.LatencyAnomaly`, and each step gets a
    two-sided conformal p-value against that field's and phase's sliding reference
    (:class:`~models.anomaly.conformal.ConformalReference`).  Fields are combined
    with Bonferroni, ``p = m * min_j p_j`` over the ``m`` steps present, valid
    however the fields are correlated.  A step beyond its phase reference's range
    gets the larger of both phases' p-values, so a rare step that recurs (a
    utilisation dropping to 0 for single samples) is not new to one phase while the
    other holds one like it; a step seen in neither window (the last ``2 * window``
    samples) is new.  The step back after an alarm is learned but not scored (it is
    the same event).  The surprisal ``-ln p`` feeds, per phase,
    a CUSUM with ``spike_k`` (*jump*: a sudden change such as a utilisation
    collapse or a clock drop) and one with ``shift_k`` (*volatility*: a run of
    unusual steps); each of the four has an average run length of four times the
    budget's (five, and five times, with the level view below).  One incident, one
    alarm: a crossing within ``refractory`` samples of an earlier one (a job
    starting: its utilisation jump, then the new noise of its power and the climb
    of its temperature) is raised only if it is clearly more severe (CUSUM / threshold
    over 1.1 times each one's, ``REPEAT_MARGIN``); else its score stays just below it.

    After a raised alarm the detector re-learns (``relearn_after_alarm``): the alarm
    marks a change, and the steps after it go, besides the sliding references, into
    fresh references per field and phase (with ``f = max(2, tail // 4)`` extremes per
    side, so they are ready after ``relearn_span = 2 * f + 8 * f`` samples).  The steps
    of the first ``2 * f`` samples after the alarm stay out of them: they are the
    change's own ramp (on a real H100 a job start read utilisation 1, 0, then 99, and
    with that 1 -> 0 step among a few dozen fresh steps the job's end, 99 -> 0, was
    not new).
    Until then the incident is open: steps are scored against the sliding
    references alone and the refractory rule applies.  Then it closes (its CUSUMs
    and crossings are forgotten) and each step's p-value is the larger of its
    p-values against the sliding and the fresh references: a step must be new both
    to the last ``2 * window`` samples and to the regime since the alarm.  So a job
    that starts after a long idle is one alarm: its noise (power 8 W instead of 1 W,
    a climbing temperature) is not judged against idle steps alone, where it used
    to raise a "volatility" alarm a few hundred samples later; yet a real second
    incident new to the job's own steps (a utilisation collapse) alarms from
    ``relearn_span`` samples after the first.  No step's p-value is smaller than
    the sliding references alone give (so a 30 % SM clock drop soon after a job
    start goes unseen by the single steps: the boost clock settling right after the
    start widens the tails, and a few dozen fresh steps cannot rank a step that far
    out; the level view below sees it from 400 samples after the start).  The
    fresh references are dropped
    ``2 * window`` samples after the alarm (the sliding ones then hold the same
    steps).  Slow drifts are left to the hard signals (thermal throttling,
    framebuffer nearly full).

    With ``block`` the *level view* (:mod:`~models.anomaly.gpu_levels`) also scores, every
    ``block // 2`` samples, each field's step from the median of one block of ``block``
    samples to that of the next (the last ``2 * block``), against the block steps of the
    regime since the last raised alarm (forgotten at each; the steps whose blocks hold the
    alarm's first samples stay out), ready after ``4 * tail`` of them, and against every
    block step of the last ``2 * window`` samples (the larger p-value: a change that recurs
    is not new however often the regime restarts).  A change of operating point that
    comes over a few samples, each step within the noise, shows there: a real
    H200 serving requests of random size (utilisation 8-46 % from one sample to the next)
    that saturates (99 %, power 370 -> 690 W, SM clock 1,965 -> 1,455 MHz) raised no
    single-step alarm.  Fields are combined with Bonferroni as above, and each step is
    tested alone (*level_shift*: its surprisal against ``ln`` of its share of the budget's
    run length, in steps): the steps overlap by half a block, and a test of one step at a
    time stays within its share however they depend on each other.  A step beyond the
    steps seen gets the fitted tail only if that side's ``tail`` extremes lie beyond the
    median (a GPU mostly idle has block steps nearly all 0, whose few extremes say nothing of
    the scale), else its plain rank; but a field whose samples have not moved at all in the
    regime (a clock held in a job) gets the tail on the scale floor: any step of it is new.
    On AR(1) telemetry with lag-1 correlation 0.99 no alarm was raised in 100k samples at
    the default budget.

    Hard signals (:mod:`~models.anomaly.gpu_hard_signals`: a new XID, a throttle bit of
    ``throttle_mask`` turning on, an uncorrectable ECC error, the framebuffer used
    fraction reaching ``fb_full``) fire regardless of the score (score 1.0), on the
    sample where they appear, also within the ``warmup``.  In a GPU's first ``warmup``
    samples, while its references are young, a statistical crossing is learned as a
    raised one would be (the CUSUMs restart, the change is re-learned) but not raised:
    the score stays just below the threshold.  After the warm-up the detector raises
    exactly what it would have raised without one.

    Parameters
    ----------
    window
        Reference steps kept per field and phase. Must be >= 4 * tail.
    tail
        Extreme values per side used for the tail scale.
    spike_k, shift_k
        CUSUM reference values (surprisal units) for jumps and for volatility,
        ``1 < shift_k < spike_k``.
    budget
        False alarms per million samples with no change (statistical part only).
    fb_full
        Framebuffer used fraction that is a hard signal, in (0, 1].
    throttle_mask
        Clocks-event-reason bits that are hard signals (see ``dcgm.THROTTLE_BITS``).
    refractory
        Samples after a crossing within which a crossing not clearly more severe is a repeat
        (0: every crossing alarms); with ``relearn_after_alarm`` an incident also
        closes once it has re-learned.  Hard signals always fire.
    relearn_after_alarm
        Re-learn after each raised statistical alarm (see above); False: the sliding
        references only, as before this option (snapshots taken before it restore
        with False).
    block
        Samples per block of the level view (``0``: none; snapshots taken before it restore
        with 0 and their thresholds); an int >= 2 otherwise.
    seed
        Seed of the tie-breaking random numbers.
    warmup
        Samples learned before a statistical alarm is raised (``0``: none; the product's detectors
        take ``INFERWATCH_GPU_WARMUP_SAMPLES``).  Hard signals fire from the first sample.

    Examples
    --------
    >>> import numpy as np
    >>> from models.anomaly.dcgm import dcgm_observation
    >>> rng = np.random.default_rng(3)
    >>> det = GpuAnomaly(seed=0)
    >>> for t in range(400):
    ...     det.update(dcgm_observation({"DCGM_FI_DEV_GPU_UTIL": rng.normal(80, 5),
    ...         "DCGM_FI_DEV_GPU_TEMP": rng.normal(65, 1), "DCGM_FI_DEV_XID_ERRORS": 0}))
    >>> det.fired
    False
    >>> det.update(dcgm_observation({"DCGM_FI_DEV_GPU_UTIL": 80, "DCGM_FI_DEV_GPU_TEMP": 65,
    ...                              "DCGM_FI_DEV_XID_ERRORS": 79}))
    >>> det.fired, det.score, det.evidence()["hard_signals"]
    (True, 1.0, ['xid_79'])
    """

    name = "gpu_anomaly"

    def __init__(
        self,
        window: int = 1000,
        tail: int = 16,
        spike_k: float = 4.0,
        shift_k: float = 1.5,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        fb_full: float = 0.95,
        throttle_mask: int = DEFAULT_THROTTLE_MASK,
        refractory: int = 100,
        relearn_after_alarm: bool = True,
        block: int = 8,
        seed: int | None = 0,
        warmup: int = 0,
    ) -> None:
        check_int("tail", tail, 2)
        check_int("window", window, 4 * tail, low_text=f"4 * tail = {4 * tail}")
        for name, k in (("spike_k", spike_k), ("shift_k", shift_k)):
            check_reference_value(name, k)
        if not shift_k < spike_k:
            raise ValueError(f"shift_k must be < spike_k = {spike_k!r}, got {shift_k!r}")
        check_budget(budget)
        check_hard_signal_settings(fb_full, throttle_mask)
        check_int("refractory", refractory, 0)
        if not isinstance(relearn_after_alarm, bool):
            raise ValueError(f"relearn_after_alarm must be a bool, got {relearn_after_alarm!r}")
        check_int("block", block, 0)
        if block == 1:
            raise ValueError("block must be 0 (no level view) or an int >= 2, got 1")
        check_int("warmup", warmup, 0)
        self.window, self.tail, self.spike_k, self.shift_k = window, tail, spike_k, shift_k
        self.budget, self.fb_full, self.throttle_mask, self.seed = budget, fb_full, throttle_mask, seed
        self.refractory, self.relearn_after_alarm, self.block, self.warmup = refractory, relearn_after_alarm, block, warmup
        self._crossings: Crossings = collections.deque()  # (sample, ratio) within refractory
        self._crossed = False  # the last sample crossed (raised, a repeat, or a hard signal)
        self._blocks = BlockSteps(len(FIELDS), block, 2 * window // max(1, block // 2), tail, _MIN_SCALE) if block else None
        self._apply_budget()
        self._block_ratio = 0.0
        self._block_surprisal: dict[str, float] = {}
        self._rng = np.random.default_rng(seed)
        self._refs = [[ConformalReference(window, tail, _MIN_SCALE) for _ in FIELDS] for _ in range(2)]
        self._prev = [math.nan] * len(FIELDS)
        self._n = 0
        self._cusum = [[0.0, 0.0], [0.0, 0.0]]
        self._ratio = 0.0
        self._hard: list[str] = []
        self._surprisal = dict.fromkeys(FIELDS, 0.0)
        self._last = no_signals_yet()  # what the hard signals compare each sample with
        self._kind = "none"
        # Re-learning after a raised alarm: fresh references per phase and field, and the alarm's sample.
        self._fresh: _Refs | None = None
        self._alarm_n = 0

    def _apply_budget(self) -> None:
        # Four CUSUMs (two per phase), each stepping every other sample, and with ``block`` the level
        # view: each of the five takes an even share of the budget.
        tests = 5 if self.block else 4
        arl = self.budget.arl
        self._h = (cusum_threshold(self.spike_k, tests * arl / 2), cusum_threshold(self.shift_k, tests * arl / 2))
        # The level view tests each block step alone (a Shewhart test, valid however the overlapping
        # steps depend on each other): a surprisal of ``_h_block`` is its share of the budget per step.
        self._h_block = math.log(tests * arl / self._blocks.stride) if self._blocks else math.inf

    @property
    def relearn_span(self) -> int:
        """Samples after a raised alarm until the fresh references are ready and the incident closes."""
        return self._settle + 8 * self._fresh_tail

    @property
    def _settle(self) -> int:
        """Samples after a raised alarm whose steps stay out of the fresh references (the change's own ramp)."""
        return 2 * self._fresh_tail

    @property
    def _fresh_tail(self) -> int:
        return max(2, self.tail // 4)

    def _check(self, x: Any) -> np.ndarray:
        try:
            obs = np.asarray(x, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"observation must be numeric, got {x!r}") from exc
        if obs.shape != (len(OBSERVATION_FIELDS),):
            n = len(OBSERVATION_FIELDS)
            raise ValueError(f"observation must have shape ({n},), fields {OBSERVATION_FIELDS}; got {obs.shape}")
        if np.isinf(obs).any():
            raise ValueError(f"observation must not hold inf (NaN = missing), got {obs.tolist()}")
        return obs

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(upgrade(state))

    def _learn_one(self, x: Any) -> None:
        obs = self._check(x)
        self._hard = hard_signals(obs, self._last, self.fb_full, self.throttle_mask)
        self._n += 1
        phase = self._n % 2
        z = np.arcsinh(obs[: len(FIELDS)] / _RESOLUTION).tolist()
        steps = {}
        for j in range(len(FIELDS)):
            if not math.isnan(z[j]):
                if not math.isnan(self._prev[j]):
                    steps[j] = z[j] - self._prev[j]
                self._prev[j] = z[j]
        scored = {} if self._crossed else steps  # the step back after a crossing is learned, not scored
        fresh = self._relearned()
        u = float(self._rng.random())
        refs = self._refs[phase]
        ps = {FIELDS[j]: self._p_value(j, phase, d, u, fresh) for j, d in scored.items() if refs[j].ready}
        self._surprisal = {f: surprisal(p) for f, p in ps.items()}
        cusum = self._cusum[phase]
        if ps:
            s = _combined_surprisal(ps)
            cusum[:] = [max(0.0, c + s - k) for c, k in zip(cusum, (self.spike_k, self.shift_k))]
        block_steps = self._score_blocks(z, u)
        ratios = [c / h for c, h in zip(cusum, self._h)] + [self._block_ratio]
        self._ratio = max(ratios)
        crossed = self._ratio >= 1.0
        self._crossed = crossed or bool(self._hard)
        muted = self._repeated = False
        if crossed:
            self._cusum = [[0.0, 0.0], [0.0, 0.0]]
            if repeats(self._crossings, self._n, self._ratio, self.refractory):
                crossed, self._ratio, self._repeated = False, BELOW_ONE, self._n > self.warmup
            elif self._n <= self.warmup:  # learned as a raised one would be (its change re-learned), not raised
                muted, self._ratio = True, BELOW_ONE
            else:
                self._kind = ("jump", "volatility", "level_shift")[ratios.index(self._ratio)]
                if self._kind == "level_shift":
                    self._surprisal = dict(self._block_surprisal)
        self._fired = bool(self._hard) or (crossed and not muted)
        if self._hard:
            self._kind = "hard_signal"
        for j, d in steps.items():
            refs[j].add(d)
            if self._fresh is not None and self._n - self._alarm_n > self._settle:
                self._fresh[phase][j].add(d)
        if crossed:  # a change: learn the regime after it (its own step excluded)
            self._alarm_n = self._n
            if self.relearn_after_alarm:
                tail = self._fresh_tail
                self._fresh = [[ConformalReference(self.window, tail, _MIN_SCALE) for _ in FIELDS] for _ in range(2)]
            if self._blocks is not None:
                self._blocks.restart()  # the block steps of the regime since this alarm
        if self._blocks is not None and block_steps:
            # The regime's reference leaves out the change's own ramp (steps whose blocks hold its
            # first samples) and crossings; the sliding one takes every step, as the single steps'.
            regime = not self._crossed and self._n - self._alarm_n > self._settle + 2 * self.block
            self._blocks.learn(block_steps, regime)

    def _score_blocks(self, z: list[float], u: float) -> dict[int, float] | None:
        """Add the sample to the level view; at a step, set its ratio (surprisal over ``_h_block``) and
        return the step per field (None between steps, or with no level view)."""
        if self._blocks is None:
            return None
        steps = self._blocks.add(z)
        self._block_ratio = 0.0
        if steps:
            ps = {FIELDS[j]: self._blocks.p_value(j, d, u) for j, d in steps.items() if self._blocks.ready(j)}
            if ps:
                self._block_ratio = _combined_surprisal(ps) / self._h_block
                self._block_surprisal = {f: surprisal(p) for f, p in ps.items()}
        return steps

    def _relearned(self) -> _Refs | None:
        """The fresh references once the incident has closed, else None.

        On the first sample after ``relearn_span`` the incident closes: its CUSUMs and
        crossings are cleared (evidence judged against the old regime only); after
        ``2 * window`` samples the fresh references are dropped.
        """
        if self._fresh is None:
            return None
        age = self._n - self._alarm_n
        if age > 2 * self.window:
            self._fresh = None
            return None
        if age <= self.relearn_span:
            return None
        if age == self.relearn_span + 1:
            self._cusum = [[0.0, 0.0], [0.0, 0.0]]
            self._crossings.clear()
        return self._fresh

    def _p_value(self, j: int, phase: int, step: float, u: float, fresh: _Refs | None) -> float:
        """Two-sided p-value of field ``j``'s ``step`` against its ``phase`` references.

        A step beyond a reference's range gets the larger of the two phases' p-values
        (each valid, so is the larger): a rare step that recurs (utilisation dropping
        to 0 for one sample now and then) is missing from one phase's window now and
        then, and is not new while the other phase's window holds one like it.  Once
        re-learned (``fresh``: both phases' references since the last alarm), the
        larger of that and the same p-value against the fresh references.
        """
        p = self._pair_p(self._refs[phase][j], self._refs[1 - phase][j], step, u)
        if fresh is not None and fresh[phase][j].ready:
            p = max(p, self._pair_p(fresh[phase][j], fresh[1 - phase][j], step, u))
        return p

    @staticmethod
    def _pair_p(ref: ConformalReference, other: ConformalReference, step: float, u: float) -> float:
        p = ref.p_value(step, "two-sided", u)
        if other.ready and not ref.lowest <= step <= ref.highest:
            p = max(p, other.p_value(step, "two-sided", u))
        return p

    @property
    def score(self) -> float:
        return 1.0 if self._hard else self._ratio / (1.0 + self._ratio)

    @property
    def threshold(self) -> float:
        return 0.5

    def evidence(self) -> dict[str, Any]:
        """Score, kind, hard signals, and the fields that drove the score (most surprising first)."""
        drivers = sorted(self._surprisal.items(), key=lambda kv: -kv[1])
        return {
            "score": self.score,
            "threshold": self.threshold,
            "kind": self._kind,
            "hard_signals": list(self._hard),
            "fields": [{"field": f, "surprisal": round(s, 3)} for f, s in drivers if s >= 3.0][:3],
        }
