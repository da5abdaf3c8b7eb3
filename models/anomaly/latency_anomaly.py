"""Latency anomaly detector: conformal tail p-values accumulated by CUSUMs."""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from models.anomaly.conformal import MAX_SURPRISAL, ConformalReference, surprisal
from models.anomaly.dependence import Whitener
from models.anomaly.floor import PLAIN
from models.anomaly.latency_cusums import BY_VIEW, CUSUMS, LEVEL_SHIFT, REF_OF, SEASONAL_SHIFT, SIDES, other_views_evidence, thresholds
from models.anomaly.latency_levels import LEVEL_BLOCK_LAG, LevelBlocks
from models.anomaly.latency_map import ValueMapping
from models.anomaly.latency_parameters import check_parameters, check_value
from models.anomaly.latency_snapshots import upgrade
from models.anomaly.latency_scoring import ViewScoring
from models.anomaly.latency_season import SeasonalViews, seasonal_context
from models.anomaly.precedents import KeptOut, record
from models.anomaly.refractory import BELOW_ONE, Crossings, repeats
from models.anomaly.season_blocks import SeasonBlocks
from models.base import Detector
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget

__all__ = ["LatencyAnomaly"]


class LatencyAnomaly(ValueMapping, ViewScoring, SeasonalViews, LevelBlocks, Detector):
    """Spikes, level shifts and abrupt changes in a heavy-tailed stream (latency per model+host).

    Each value is mapped to ``y = asinh(x)`` (``log(2x)`` for latencies in
    milliseconds, so a Pareto tail becomes exponential; a general metric may be
    negative).  Two *views* are scored against sliding reference windows
    (:class:`~models.anomaly.conformal.ConformalReference`): the value ``y``, upper
    tail (slower than usual), and the *step* ``y_t - y_t-1``, both tails (an abrupt
    change or a noisier pattern, robust to slow daily cycles).  Steps are taken
    over disjoint pairs of events, in two phases (pairs ending at even events,
    pairs ending at odd ones), each with its own reference: within a phase the
    steps are independent on a stream with no change, while overlapping steps
    share a value, so one outlier would count twice.  A step from a value that
    just alarmed is skipped (one spike, one alarm).  An event that crosses a
    threshold adds none of its views to the references (with no change crossings
    are rare, so the p-values stay conformal to within the budget; after a spike
    the next one of the same size is still far out instead of tied with it).  A
    view's p-value is its conformal rank, uniform on an exchangeable stream whatever
    the distribution, with an exponential tail fitted to the ``tail`` most extreme
    values beyond the window's range.  Means are never used.

    Once ``precedent_after`` events old, and for ``window`` events, a crossing kept out
    of a reference is *precedent* (:mod:`~models.anomaly.precedents`): a later value
    beyond that reference's range that it reaches gets its plain conformal rank, not
    the fitted tail, so a value recurring with no change (timeouts) alarms once.

    On latency that wanders with load the value's surprisals come in runs that a
    CUSUM takes for a shift (AR(1) 0.9: hundreds of false alarms per 100k events).
    With ``whiten`` the value views (value, drop, short) score the value net of its
    lag-1 autocorrelation ``rho`` (:class:`~models.anomaly.dependence.Whitener`; 0
    unless clearly positive): a spike stands out more, a level shift less (after its
    first event only ``1 - rho`` of it remains).  The steps are scored as they are.
    While ``rho`` is at least 0.8 the value's *level_shift* steps once per block of
    ``level_block`` values, their median ranked against earlier blocks'
    (:mod:`~models.anomaly.latency_levels`).

    A latency is a fixed part plus one that wanders with load, and ``asinh``
    evens out the spread of a lognormal latency, not of a shifted one: its
    surprisals then come in runs while the level is high.  With ``floor`` (and
    ``min_value`` set), every ``window`` events until one is found, while the raw
    reference is full and no period holds, a floor is looked for
    (:mod:`~models.anomaly.floor`); once found the values are scored as
    ``asinh((x - floor) / scale)``, the detector starting over from the
    reference's values so mapped (no alarm while they are replayed).  A fixed
    monotone map: an exchangeable stream stays exchangeable.  A floor found before
    a cycle showed is given up once a period holds (:mod:`~models.anomaly.latency_map`).

    Three more views (:mod:`~models.anomaly.latency_cusums` describes each): while a
    period holds (:class:`~models.anomaly.context.SeasonalContext`: periods up to a
    window in the last three windows of values, of 1.5 to 11.25 windows in medians of
    blocks of 15; never on independent values) the *seasonal residual*, each value
    against the same phase in earlier cycles (:mod:`~models.anomaly.latency_season`);
    the value's *lower* tail (*drop*: far faster than usual); and, while no period
    holds, the value against a *short* reference of the last ``short_window`` values.
    While a period holds (once the residual's reference is ready) the value's
    *level_shift* and the short reference are not in use: against every phase of the
    cycle the daily high read as a level shift every day (a cycle of 288 requests, log
    amplitude 0.3: 5x the budget).  The value's single-event tails (*spike*, *drop*)
    stay: a value far beyond every phase is still news.  The residual feeds
    *seasonal_shift* once per block of ``season_block`` events, the block's median
    ranked against earlier blocks' (:mod:`~models.anomaly.season_blocks`): a short
    period's always, a long one's while it does not wander
    (:mod:`~models.anomaly.latency_season`).

    The surprisal ``s = -ln p`` is then Exp(1).  The CUSUMs take it averaged over
    the tie-breaking draw
    (:meth:`~models.anomaly.conformal.ConformalReference.mean_surprisal`, in closed
    form): the same mean, no randomness (the alarms do not depend on ``seed``), and
    on a quantised stream, where a value ties with many reference values, less
    spread than one draw's surprisal (fewer false alarms there, never more).
    CUSUMs ``S = max(0, S + s - k)`` accumulate it, with ``spike_k`` for single
    events (*spike*, *jump*, *seasonal_spike*, *drop*) and ``shift_k`` or
    ``volatility_k`` for runs (*level_shift*, *volatility*, *seasonal_shift*;
    ``latency_cusums.CUSUMS``).  Each CUSUM's threshold ``h`` gives an in-control
    average run length (in events) of the budget's times the number of CUSUMs in use
    (:func:`~models.anomaly.cusum_calibration.cusum_threshold`), so together
    they stay within ``budget``.  The score is ``r / (1 + r)`` with ``r`` the
    largest ``S / h``: in [0, 1], ``threshold`` 0.5.  At an alarm ``r`` grows by
    ``severity_weight`` times the largest surprisal of the event's value or step,
    so an alarm on an extreme value outranks a marginal run (that surprisal counts
    the reference values tied with the event against it, instead of averaging over
    the tie-breaking draw as the CUSUMs do: a value repeated throughout the
    reference, as on a quantised or clipped metric, is not extreme), and by
    ``corroboration_weight`` times the evidence the *other* views hold at that
    moment (the sum, over the views other than the crossing one, of each view's
    largest ``S / h``): an alarm that the value, the steps and the seasonal
    residual agree on outranks one carried by a single view (a view's CUSUMs
    score the same p-values, so each view counts once).  The crossings are the
    same; only their ranking changes (and with it which ones repeat an earlier,
    more severe crossing, below).  After a crossing all CUSUMs restart.  Within
    ``refractory`` events of an earlier crossing, a new one is raised only if it
    is clearly more severe (``r`` over ``refractory.REPEAT_MARGIN``, 1.1, times that
    of every crossing in that span); otherwise it is a repeat of the same incident,
    not raised (``fired`` stays false, the score just below the threshold).  The
    reference keeps sliding, so a lasting shift keeps alarming (less and less often,
    and only when it grows by over 10 %) until it fills the window: the alert layer
    dedups.

    Parameters
    ----------
    window
        Reference values kept (sliding; half as many steps per phase). Must be >= 8 * tail.
    tail
        Extreme values on each side used to fit the exponential tail.
    spike_k, shift_k, volatility_k
        CUSUM reference values (surprisal units), each > 1 (the null mean);
        ``shift_k`` and ``volatility_k`` must be < ``spike_k``.
    budget
        False alarms per million events with no change.
    min_value
        Smallest valid value (``0.0`` for latency; ``None`` accepts any finite value).
    recent
        Values kept for the recent-quantile evidence.
    seed
        Seed of the tie-breaking random numbers (used only by a detector restored from a
        snapshot taken before the CUSUMs averaged the surprisal over the draw).
    season_prominence
        Autocorrelation prominence (peak minus the lowest value at shorter lags)
        a period needs; ``None`` turns the seasonal view off.
    severity_weight
        Ratio added at an alarm per unit surprisal of its value or step (``0`` keeps ``S / h``).
    corroboration_weight
        Ratio added at an alarm per unit ``S / h`` held by the other views (``0``: none).
    refractory
        Events after a crossing during which a new crossing alarms only if clearly more severe (``0``: every crossing alarms).
    short_window
        Values in the short reference (``0`` turns that view off); at least ``8 * tail``, at most ``window``.
    drops
        Score the lower tail of the value (values far below the reference) with its own CUSUM.
    precedent_after
        Events after which a crossing kept out of the references is precedent (``None``: never).
    whiten
        Score the value views net of the stream's lag-1 autocorrelation (``False``: the values as they are).
    floor
        Look for a fixed part of the values (with ``min_value`` set; every ``window`` events until one
        is found) and map the rest (``False``: ``asinh(x)`` always).
    season_block
        Residuals per block whose median *seasonal_shift* scores while a short period holds, or a long
        one whose residual does not wander (``0``: every residual, as before); 0 or in [2, ``window // 16``].
    level_block
        Values per block whose median *level_shift* scores while the values wander (lag-1
        autocorrelation at least 0.8; ``0``: every value, as before); 0 or in [2, ``window // 16``].
    warmup
        Events learned before any alarm is raised (``0``: none; the product's detectors take
        ``INFERWATCH_WARMUP_EVENTS``).  A crossing within them is kept out and restarts the
        CUSUMs as any other, but is not raised: the score stays just below the threshold.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> lat = rng.lognormal(np.log(20.0), 0.4, 3000)
    >>> lat[2000:] *= 3.0  # the model became three times slower
    >>> det = LatencyAnomaly(seed=1)
    >>> fired = det.update_many(lat)
    >>> int(fired[0]), det.evidence()["kind"]
    (2005, 'level_shift')
    >>> bool((fired < 2000).any())
    False
    """

    name = "latency_anomaly"

    def __init__(
        self,
        window: int = 2000,
        tail: int = 32,
        spike_k: float = 4.0,
        shift_k: float = 1.5,
        volatility_k: float = 2.0,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        min_value: float | None = 0.0,
        recent: int = 64,
        seed: int | None = 0,
        season_prominence: float | None = 0.4,
        severity_weight: float = 0.035,
        refractory: int = 100,
        short_window: int = 256,
        drops: bool = True,
        corroboration_weight: float = 0.1,
        precedent_after: int | None = 100,
        whiten: bool = True,
        floor: bool = True,
        season_block: int = 6,
        level_block: int = 24,
        warmup: int = 0,
    ) -> None:
        self.window, self.tail = window, tail
        self.spike_k, self.shift_k, self.volatility_k = spike_k, shift_k, volatility_k
        self.budget, self.min_value, self.recent, self.seed = budget, min_value, recent, seed
        self.season_prominence, self.severity_weight = season_prominence, severity_weight
        self.refractory, self.short_window, self.drops = refractory, short_window, drops
        self.corroboration_weight, self.precedent_after = corroboration_weight, precedent_after
        self.whiten, self.floor, self.season_block, self.level_block = whiten, floor, season_block, level_block
        self.warmup = warmup
        check_parameters(self)
        self._severity_ties = True  # severity counts ties against the event (u = 1)
        self._tie_mean = True  # the CUSUMs add the surprisal averaged over the tie-breaking draw
        self._short_precedent = True  # the short view's tail is not fitted beyond what the long reference supports
        self._floor_yields = True  # a floor found before a period is dropped once one holds
        self._floor_refuted_below = -math.inf  # a value below this gives the floor up (set when one is found)
        self._plain_until_season_ready = True  # the plain views stay in use until the residual's reference is ready
        self._long_season_blocks = True  # a long period's level shifts are scored in blocks while its residual is steady
        self._k = [getattr(self, attr) for *_, attr in CUSUMS]
        self._apply_budget()
        self._context = seasonal_context(window, season_prominence)
        self._rng = np.random.default_rng(seed)
        self._uniforms: list[float] = []
        sizes = {"value": window, "pair0": window // 2, "pair1": window // 2, "season": window}  # half as many steps per phase
        if short_window:
            sizes["short"] = short_window
        self._refs = {v: ConformalReference(n, tail, min_scale=1e-3) for v, n in sizes.items()}
        self._recent: collections.deque[float] = collections.deque(maxlen=recent)
        self._prev = 0.0
        self._cusum = [0.0] * len(CUSUMS)
        self._surprisal = {view: 0.0 for view, _ in SIDES}
        self._ratio = 0.0
        self._kind = "none"
        self._n = 0
        self._crossed = False  # the last event crossed a threshold (raised or a repeat)
        self._crossings: Crossings = collections.deque()  # (event, r) within refractory
        # Views of the crossings kept out of each reference: (event, value); pruned to the last
        # ``window`` events when one is added, and read only within that span.
        self._kept_out: dict[str, KeptOut] = {v: collections.deque() for v in self._refs if v != "short"}
        self._whitener = Whitener(window, tail) if whiten else None
        # The long-cycle residual's whitening (see ``_long_whitener``), made when a long period is first found.
        self._season_whitener: Whitener | None = None
        # The residual in blocks (see ``season_blocks``), made when a period first holds.
        self._season_blocks: SeasonBlocks | None = None
        # The values in blocks, whose medians level_shift scores while they wander (``latency_levels``).
        self._level_blocks, self._level_by_blocks = SeasonBlocks(level_block, window, LEVEL_BLOCK_LAG) if level_block else None, False
        # The map the values are scored in (``asinh((x - floor) / scale)`` once a floor is found), and
        # the event count at which to look for a floor next (every ``window`` events until one is found).
        self._map = PLAIN
        self._floor_check = float(window) if floor and min_value is not None else math.inf

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(upgrade(state, len(CUSUMS), (view for view, _ in SIDES)))

    def _apply_budget(self) -> None:
        self._h_plain, self._h_season, self._h_season_blocks, self._h_level_blocks = thresholds(
            self._k, self.budget.arl, drops=self.drops, short_window=self.short_window,
            season_block=self.season_block, level_block=self.level_block,
        )

    def _uniform(self) -> float:
        if not self._uniforms:
            self._uniforms = self._rng.random(256).tolist()
        return self._uniforms.pop()

    def _learn_one(self, x: Any) -> None:
        x = check_value(x, self.min_value)
        self._check_map(x)
        y = self._map(x)
        self._n += 1
        self._recent.append(x)
        self._ratio = 0.0
        w, z = self._whitener.value(y) if self._whitener is not None else (y, None)
        views = {"value": w}
        if self.drops:
            views["low"] = w
        # On a stream that is nearly a random walk the value and its lower tail are ranked as
        # innovations instead (see Whitener.innovations); the references still learn ``w``.
        inno = self._whitener.innovations(y) if self._whitener is not None else None
        inno_ref = inno[1] if inno is not None else None
        # Steps over disjoint pairs, in two phases (pairs ending at even / odd events):
        # independent within a phase on a stream with no change.  A step from a value
        # that raised an alarm is skipped, so one spike alarms once.
        if self._n > 1 and not self._crossed:
            views[f"pair{self._n % 2}"] = y - self._prev
        self._prev = y
        self._fired = self._crossed = self._repeated = False
        season = self._season_step(y, views)
        if not season.in_season and self.short_window:
            views["short"] = w
        by_level = self._level_mode(season.in_season, inno is not None)
        plain = self._h_level_blocks if by_level else self._h_plain
        hs = (self._h_season_blocks if season.by_blocks else self._h_season) if season.in_season else plain
        # A CUSUM not in use now restarts from 0: the seasonal ones while no period holds; while one
        # does, the short reference's (daily highs are compared with earlier ones, not with the last
        # hours) and the value's level_shift (a daily high is no level shift).
        for i, h in enumerate(hs):
            if h == math.inf:
                self._cusum[i] = 0.0
        scored = views if inno is None else {**views, **{v: inno[0] for v in ("value", "low") if v in views}}
        mean = self._tie_mean
        u = 0.0 if mean else self._uniform()
        cusum, k = self._cusum, self._k
        for view, side, ref, fit in self._scorable(scored, inno_ref):
            if mean:
                s = ref.mean_surprisal(scored[view], side, MAX_SURPRISAL, fit)
            else:
                s = surprisal(ref.p_value(scored[view], side, u, fit))
            if view == "short":
                s = min(s, self._short_cap(w))
            self._surprisal[view] = s
            for i in BY_VIEW[view]:
                if (i == SEASONAL_SHIFT and season.by_blocks) or (i == LEVEL_SHIFT and by_level):
                    continue  # scored per block, below
                if hs[i] != math.inf:  # one not in use stays at 0 (no increment carried into later use)
                    cusum[i] = max(0.0, cusum[i] + s - k[i])
        self._season_block_step(season, cusum, k)
        level_median = self._level_block_step(y, season.in_season, k[LEVEL_SHIFT])
        ratios = [c / h for c, h in zip(self._cusum, hs)]
        best = max(range(len(ratios)), key=ratios.__getitem__)
        self._ratio = ratios[best]
        if self._ratio >= 1.0:
            self._crossed = True
            # Severity: an alarm whose own value or step is extreme ranks above a marginal one.
            self._ratio += self.severity_weight * self._severity(scored, inno_ref)
            # Corroboration: the evidence the other views hold at this moment.
            self._ratio += self.corroboration_weight * other_views_evidence(ratios, best)
            self._cusum = [0.0] * len(CUSUMS)
            # One incident, one alarm: a crossing not clearly more severe than one in the last
            # ``refractory`` events repeats it and is not raised; nor is one within the warm-up.
            repeat = repeats(self._crossings, self._n, self._ratio, self.refractory)
            if repeat or self._n <= self.warmup:
                self._ratio, self._repeated = BELOW_ONE, repeat and self._n > self.warmup
            else:
                self._fired = True
                self._kind = CUSUMS[best][0]
        self._season_settle(season, self._crossed)
        self._level_settle(level_median, self._crossed)
        if self._crossed:
            # An event that crossed is kept out of every reference: one spike must
            # not make the next one look normal (in control, crossings are rare).
            # Once ``precedent_after`` events old it is precedent (see ``_scorable``).
            if self.precedent_after is not None:
                record(self._kept_out, views, n=self._n, window=self.window)
            if self._whitener is not None:
                self._whitener.skip(y)
            return
        if self._whitener is not None:
            self._whitener.learn(y, z)
        if self.short_window:
            self._refs["short"].add(w)  # whether scored or not
        for view, value in views.items():
            if view not in REF_OF and view != "short":
                self._refs[view].add(value)

    @property
    def score(self) -> float:
        return self._ratio / (1.0 + self._ratio)

    @property
    def threshold(self) -> float:
        return 0.5

    def evidence(self) -> dict[str, Any]:
        """Score, last alarm kind, surprisals, reference vs recent p50/p95/p99, period, lag-1
        autocorrelation and the latency's floor (``None``: none found)."""
        raw = self._raw_reference
        ref = self._map.inverse(np.asarray(raw.values())) if self._n else np.full(1, np.nan)
        rec = np.asarray(self._recent) if self._recent else np.full(1, np.nan)
        qs = (0.5, 0.95, 0.99)
        return {
            "score": self.score,
            "threshold": self.threshold,
            "kind": self._kind,
            "surprisal": dict(self._surprisal),
            "reference": {f"p{round(q * 100)}": float(np.quantile(ref, q)) for q in qs},
            "recent": {f"p{round(q * 100)}": float(np.quantile(rec, q)) for q in qs},
            "n": self._n,
            "period": self._context.period if self._context is not None else None,
            "autocorrelation": self._whitener.rho if self._whitener is not None else 0.0,
            "floor": None if self._map == PLAIN else self._map.floor,
        }
