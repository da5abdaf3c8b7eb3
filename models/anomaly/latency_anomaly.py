"""Latency anomaly detector: conformal tail p-values accumulated by CUSUMs."""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from models.anomaly.conformal import ConformalReference
from models.anomaly.context import SeasonalContext
from models.anomaly.cusum_calibration import cusum_threshold
from models.base import Detector, check_positive
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget

__all__ = ["LatencyAnomaly"]

_MAX_SURPRISAL = 50.0

#: The CUSUMs: (alarm kind, view, side of the p-value, which k parameter).
_CUSUMS = (
    ("spike", "value", "upper", "spike_k"),
    ("level_shift", "value", "upper", "shift_k"),
    ("jump", "pair0", "two-sided", "spike_k"),
    ("volatility", "pair0", "two-sided", "volatility_k"),
    ("jump", "pair1", "two-sided", "spike_k"),
    ("volatility", "pair1", "two-sided", "volatility_k"),
    ("seasonal_spike", "season", "two-sided", "spike_k"),
    ("seasonal_shift", "season", "two-sided", "shift_k"),
)
_N_PLAIN = 6  # CUSUMs used while no period holds (the seasonal ones are the last two)
_SIDES = (("value", "upper"), ("pair0", "two-sided"), ("pair1", "two-sided"), ("season", "two-sided"))
_BY_VIEW = {v: [i for i, c in enumerate(_CUSUMS) if c[1] == v] for v, _ in _SIDES}
_MIN_PERIOD = 16
_BELOW_ONE = math.nextafter(1.0, 0.0)  # ratio of a repeated crossing: just below the threshold


class LatencyAnomaly(Detector):
    """Spikes, level shifts and abrupt changes in a heavy-tailed stream (latency per model+host).

    Each value is mapped to ``y = asinh(x)`` (``log(2x)`` for latencies in
    milliseconds, so a Pareto tail becomes exponential; a general metric may be
    negative).  Two *views* are scored against sliding reference windows
    (:class:`~models.anomaly.conformal.ConformalReference`): the value ``y``,
    upper tail only (slower than usual), and the *step* ``y_t - y_t-1``, both
    tails (an abrupt change or a noisier pattern, either way, robust to slow
    daily cycles).  Steps are taken over disjoint pairs of events, in two phases
    (pairs ending at even events, pairs ending at odd ones), each with its own
    reference: within a phase the steps are independent on a stream with no
    change, while overlapping steps share a value, so one outlier would count
    twice.  A step from a value that just alarmed is skipped (one spike, one
    alarm).  A view's p-value is its conformal rank, uniform on an exchangeable
    stream whatever the distribution, with an exponential tail fitted to the
    ``tail`` most extreme values beyond the window's range.  Means are never used.

    When the stream has a cycle (a period found by
    :class:`~models.anomaly.context.SeasonalContext` from the autocorrelation;
    never on independent values) a third view, the *seasonal residual* (the
    value minus the median of the same phase in the last three periods, both
    tails), is scored too, so a daily high is compared with earlier daily highs.

    The surprisal ``s = -ln p`` is then Exp(1) and CUSUMs ``S = max(0, S + s - k)``
    accumulate it: value with ``spike_k`` (*spike*) and ``shift_k``
    (*level_shift*), per step phase ``spike_k`` (*jump*) and ``volatility_k``
    (*volatility*), and, while a period holds, the residual with ``spike_k``
    (*seasonal_spike*) and ``shift_k`` (*seasonal_shift*).  Each CUSUM's
    threshold ``h`` gives an in-control average run length (in events) of the
    budget's times the number of CUSUMs in use
    (:func:`~models.anomaly.cusum_calibration.cusum_threshold`), so together
    they stay within ``budget``.  The score is ``r / (1 + r)`` with ``r`` the
    largest ``S / h``: in [0, 1], ``threshold`` 0.5.  At an alarm ``r`` grows by
    ``severity_weight`` times the largest surprisal of the event's value or step,
    so an alarm on an extreme value outranks a marginal run (the alarms are the
    same).  After a crossing all CUSUMs restart.  Within ``refractory`` events of
    an earlier crossing, a new one is raised only if it is more severe (larger
    ``r``) than every crossing in that span; otherwise it is a repeat of the same
    incident, not raised (``fired`` stays false, the score just below the
    threshold).  The reference keeps sliding, so a lasting shift keeps alarming
    (less and less often, and only when it grows) until it fills the window:
    the alert layer dedups.

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
        Seed of the tie-breaking random numbers.
    season_prominence
        Autocorrelation prominence (peak minus the lowest value at shorter lags)
        a period needs; ``None`` turns the seasonal view off.
    severity_weight
        Ratio added at an alarm per unit surprisal of its value or step (``0`` keeps ``S / h``).
    refractory
        Events after a crossing during which a new crossing alarms only if more severe (``0``: every crossing alarms).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> lat = rng.lognormal(np.log(20.0), 0.4, 3000)
    >>> lat[2000:] *= 3.0  # the model became three times slower
    >>> det = LatencyAnomaly(seed=1)
    >>> fired = det.update_many(lat)
    >>> int(fired[0]), det.evidence()["kind"]
    (2004, 'level_shift')
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
        severity_weight: float = 0.025,
        refractory: int = 100,
    ) -> None:
        if not isinstance(tail, int) or isinstance(tail, bool) or tail < 2:
            raise ValueError(f"tail must be an int >= 2, got {tail!r}")
        if not isinstance(window, int) or isinstance(window, bool) or window < 8 * tail:
            raise ValueError(f"window must be an int >= 8 * tail = {8 * tail}, got {window!r}")
        for name, k in (("spike_k", spike_k), ("shift_k", shift_k), ("volatility_k", volatility_k)):
            check_positive(name, k)
            if k <= 1.0:
                raise ValueError(f"{name} must be > 1 (the mean surprisal with no change), got {k!r}")
        if not (shift_k < spike_k and volatility_k < spike_k):
            raise ValueError(f"shift_k and volatility_k must be < spike_k = {spike_k!r}")
        if not isinstance(budget, FalseAlarmBudget):
            raise ValueError(f"budget must be a FalseAlarmBudget, got {budget!r}")
        if min_value is not None:
            check_positive("abs(min_value)", abs(min_value), allow_zero=True)
        if not isinstance(recent, int) or isinstance(recent, bool) or recent < 1:
            raise ValueError(f"recent must be an int >= 1, got {recent!r}")
        if season_prominence is not None and not 0.0 < season_prominence <= 2.0:
            raise ValueError(f"season_prominence must be in (0, 2] or None, got {season_prominence!r}")
        check_positive("severity_weight", severity_weight, allow_zero=True)
        if not isinstance(refractory, int) or isinstance(refractory, bool) or refractory < 0:
            raise ValueError(f"refractory must be an int >= 0, got {refractory!r}")
        self.window, self.tail = window, tail
        self.spike_k, self.shift_k, self.volatility_k = spike_k, shift_k, volatility_k
        self.budget, self.min_value, self.recent, self.seed = budget, min_value, recent, seed
        self.season_prominence, self.severity_weight = season_prominence, severity_weight
        self.refractory = refractory
        self._k = ks = [getattr(self, attr) for *_, attr in _CUSUMS]
        # The budget is split evenly over the CUSUMs in use (six, or eight while a period
        # holds).  Pair CUSUMs step once per two events: their ARL in steps is half that in events.
        self._h_plain, self._h_season = (
            [
                cusum_threshold(k, n * budget.arl / (2.0 if c[1].startswith("pair") else 1.0))
                for c, k in zip(_CUSUMS[:n], ks)
            ]
            for n in (_N_PLAIN, len(_CUSUMS))
        )
        seasonal = season_prominence is not None
        self._context = SeasonalContext(window, _MIN_PERIOD, season_prominence) if seasonal else None
        self._rng = np.random.default_rng(seed)
        self._uniforms: list[float] = []
        self._refs = {  # half as many steps per phase
            v: ConformalReference(window // 2 if v.startswith("pair") else window, tail, min_scale=1e-3)
            for v, _ in _SIDES
        }
        self._recent: collections.deque[float] = collections.deque(maxlen=recent)
        self._prev = 0.0
        self._cusum = [0.0] * len(_CUSUMS)
        self._surprisal = {view: 0.0 for view, _ in _SIDES}
        self._ratio = 0.0
        self._kind = "none"
        self._n = 0
        self._crossed = False  # the last event crossed a threshold (raised or a repeat)
        self._crossings: collections.deque[tuple[int, float]] = collections.deque()  # (event, r) within refractory

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots taken before the refractory span existed: every crossing alarmed.
        state.setdefault("refractory", 0)
        state.setdefault("_crossed", state.get("_fired", False))
        state.setdefault("_crossings", collections.deque())
        self.__dict__.update(state)

    def _uniform(self) -> float:
        if not self._uniforms:
            self._uniforms = self._rng.random(256).tolist()
        return self._uniforms.pop()

    def _check(self, x: Any) -> float:
        try:
            x = float(x)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"value must be a real number, got {x!r}") from exc
        if not math.isfinite(x):
            raise ValueError(f"value must be finite, got {x!r}")
        if self.min_value is not None and x < self.min_value:
            raise ValueError(f"value must be >= {self.min_value}, got {x!r}")
        return x

    def _learn_one(self, x: Any) -> None:
        x = self._check(x)
        y = math.asinh(x)
        self._n += 1
        self._recent.append(x)
        self._ratio = 0.0
        views = {"value": y}
        # Steps over disjoint pairs, in two phases (pairs ending at even / odd events):
        # independent within a phase on a stream with no change.  A step from a value
        # that raised an alarm is skipped, so one spike alarms once.
        if self._n > 1 and not self._crossed:
            views[f"pair{self._n % 2}"] = y - self._prev
        self._prev = y
        self._fired = self._crossed = False
        res = self._context.add(y) if self._context is not None else None
        seasonal = res is not None
        if seasonal:
            views["season"] = res  # value minus the median of the same phase in the last 3 periods
        else:
            self._cusum[_N_PLAIN:] = [0.0] * (len(_CUSUMS) - _N_PLAIN)
        u = self._uniform()
        for view, side in _SIDES:
            if view in views and self._refs[view].ready:
                p = self._refs[view].p_value(views[view], side, u)
                self._surprisal[view] = min(_MAX_SURPRISAL, -math.log(p)) if p > 0 else _MAX_SURPRISAL
                s, cusum, k = self._surprisal[view], self._cusum, self._k
                for i in _BY_VIEW[view]:
                    cusum[i] = max(0.0, cusum[i] + s - k[i])
        hs = self._h_season if seasonal else self._h_plain
        ratios = [c / h for c, h in zip(self._cusum, hs)]
        best = max(range(len(ratios)), key=ratios.__getitem__)
        self._ratio = ratios[best]
        if self._ratio >= 1.0:
            self._crossed = True
            # Severity: an alarm whose own value or step is extreme ranks above a marginal one.
            self._ratio += self.severity_weight * max(self._surprisal[v] for v in views if v != "season")
            self._cusum = [0.0] * len(_CUSUMS)
            # One incident, one alarm: a crossing no more severe than one in the last
            # ``refractory`` events repeats it and is not raised.
            recent = self._crossings
            while recent and recent[0][0] < self._n - self.refractory:
                recent.popleft()
            repeat = any(r >= self._ratio for _, r in recent)
            if self.refractory:
                recent.append((self._n, self._ratio))
            if repeat:
                self._ratio = _BELOW_ONE
            else:
                self._fired = True
                self._kind = _CUSUMS[best][0]
        for view, value in views.items():
            self._refs[view].add(value)

    @property
    def score(self) -> float:
        return self._ratio / (1.0 + self._ratio)

    @property
    def threshold(self) -> float:
        return 0.5

    def evidence(self) -> dict[str, Any]:
        """Score, last alarm kind, surprisals, and reference vs recent p50/p95/p99."""
        ref = np.sinh(np.asarray(self._refs["value"].values())) if self._n else np.full(1, np.nan)
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
        }
