"""Missing-value rate per feature: Bernoulli CUSUM against the reference rate."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from models.base import check_positive
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget, bernoulli_cusum_threshold
from models.drift._cusum import BLOCK, CusumPath, blocked, quantize
from models.drift._reference import floor_2sig
from models.drift._warmup import WarmupDetector, check_reference_args

__all__ = ["REFERENCE_WINDOWS", "MissingRate"]

#: Warm-ups' worth of events a feature's reference grows to (doubling each time) while it does not alarm.
REFERENCE_WINDOWS = 64


class MissingRate(WarmupDetector):
    """Rise of the share of missing values (NaN) in each of ``F`` features.

    The warm-up estimates each feature's missing rate ``p0`` (at least
    ``0.5 / warmup``, so a feature never missing still has a finite rate).  The
    monitor is the log-likelihood-ratio CUSUM for ``p0 -> p1`` with
    ``p1 = max(ratio * p0, p0 + min_increase)`` (raised, for short warm-ups,
    above what the warm-up cannot rule out for ``p0``): ``+ln(p1/p0)`` per missing
    value, ``-ln((1-p0)/(1-p1))`` per present one.  Its threshold meets the
    ``budget`` per feature on average over the uncertainty of ``p0`` (see
    :func:`models.calibration.bernoulli_cusum_threshold`).  ``score`` is the
    largest CUSUM over its threshold; after an alarm that feature's CUSUM restarts.

    A warm-up of a few thousand events holds few missing values (2,000 at 1 %: 20 ± 4.5),
    so ``p0`` is often well off; averaged over warm-ups the budget holds, but a feature
    whose warm-up fell low alarms over and over (at 1 %, one stream in 25 raised 30
    alarms in 300,000 events).  So the reference keeps learning: each time as many events
    have been monitored as it holds, a feature that has not alarmed since the last time
    folds them into its reference, and ``p0``, ``p1`` and the threshold are set again from
    it (the CUSUM goes on), until the reference holds :data:`REFERENCE_WINDOWS` warm-ups.
    A feature that alarmed keeps its reference (a rise is not learned as normal).

    Features missing more than 90 % of the time in the warm-up are not watched.

    Parameters
    ----------
    warmup
        Events in the reference warm-up (at least 100).
    budget
        False alarms per million events per feature.
    ratio
        Relative rise the CUSUM is tuned for (> 1).
    min_increase
        Smallest absolute rise it is tuned for, in (0, 0.5).
    features
        Optional feature names; fixes the number of features.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> xs = rng.normal(size=(8000, 3))
    >>> xs[rng.random((8000, 3)) < np.where(np.arange(8000)[:, None] < 6000, 0.02, 0.06)] = np.nan
    >>> det = MissingRate(warmup=2000)
    >>> fired = det.update_many(xs)
    >>> int(fired[0]), det.evidence()["last_alarm"]["features"]
    (6255, ['1'])
    """

    name = "missing_rate"

    def __init__(
        self,
        warmup: int = 5000,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        ratio: float = 2.0,
        min_increase: float = 0.01,
        features: tuple[str, ...] | None = None,
    ) -> None:
        check_reference_args(warmup, budget, features)
        if not (isinstance(ratio, (int, float)) and ratio > 1):
            raise ValueError(f"ratio must be a number > 1, got {ratio!r}")
        check_positive("min_increase", min_increase)
        if not min_increase < 0.5:
            raise ValueError(f"min_increase must be in (0, 0.5), got {min_increase!r}")
        self.warmup, self.budget, self.ratio, self.min_increase, self.features = (
            warmup, budget, ratio, min_increase, features
        )
        self.relearn()

    def _start(self, sample: np.ndarray) -> None:
        n, f = float(len(sample)), sample.shape[1]
        self._ref_n, self._ref_missed = np.full(f, n), np.isnan(sample).sum(0).astype(float)
        p_hat = self._ref_missed / n
        self._p_hat, self._p0, self._p1 = p_hat, np.zeros(f), np.zeros(f)
        self._up, self._down, self._h = np.zeros(f), np.zeros(f), np.full(f, np.inf)
        # Features missing most of the time in the warm-up (over 90 %) are not watched.
        self._set_reference(np.flatnonzero(p_hat <= 0.9))
        self._s = np.zeros(f)
        self._seen = np.zeros(f)
        self._missed = np.zeros(f)
        self._alarm_scores: np.ndarray | None = None
        self._since = 0.0  # events monitored since the reference last grew
        self._missed_since = np.zeros(f)  # and per feature their missing values,
        self._alarmed_since = np.zeros(f, dtype=bool)  # and whether it alarmed
        self._grow_after = n  # the reference grows after this many more (None: grown as far as it goes)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("phase") == "monitoring" and "_grow_after" not in state:  # from before the reference grew: it stays
            f = len(state["_h"])
            state.update(_since=0.0, _missed_since=np.zeros(f), _alarmed_since=np.zeros(f, dtype=bool), _grow_after=None)
        self.__dict__.update(state)

    def _set_reference(self, rows: np.ndarray) -> None:
        """``p0``, ``p1`` and the thresholds of features ``rows`` from their reference counts."""
        n, p_hat = self._ref_n[rows], self._ref_missed[rows] / self._ref_n[rows]
        p0 = np.array([float(f"{v:.2g}") for v in np.clip(p_hat, 0.5 / n, 0.9)])
        # Tuned-for rate: also beyond the far tail of what the reference leaves possible.
        tail = stats.beta.isf(1e-6, p0 * n + 0.5, n - p0 * n + 0.5)
        p1 = np.round(np.minimum(np.maximum.reduce([self.ratio * p0, p0 + self.min_increase, 1.25 * tail]), 0.999), 6)
        self._p_hat[rows], self._p0[rows], self._p1[rows] = p_hat, p0, p1
        self._up[rows] = np.log(p1 / p0)
        self._down[rows] = -np.log((1 - p0) / (1 - p1))
        self._h[rows] = [
            bernoulli_cusum_threshold(float(a), float(b), self.budget.alpha, floor_2sig(float(m))) for a, b, m in zip(p0, p1, n, strict=True)
        ]

    def _thresholds(self) -> None:
        self._set_reference(np.flatnonzero(np.isfinite(self._h)))  # the watched features

    def _grow_reference(self) -> None:
        """Fold the events monitored since the last time into the reference of every watched feature
        that has not alarmed since, set its ``p0``, ``p1`` and threshold again; schedule the next time."""
        growing = np.isfinite(self._h) & (self._ref_n < REFERENCE_WINDOWS * self.warmup)
        rows = np.flatnonzero(growing & ~self._alarmed_since)
        self._ref_n[rows] += self._since
        self._ref_missed[rows] += self._missed_since[rows]
        self._set_reference(rows)
        self._since, self._missed_since[:], self._alarmed_since[:] = 0.0, 0.0, False
        below = self._ref_n[growing & (self._ref_n < REFERENCE_WINDOWS * self.warmup)]
        self._grow_after = float(below.min()) if below.size else None

    def _monitor(self, chunk: np.ndarray) -> list[int]:
        """Process a batch, in spans that end where the reference grows (so results match one event
        at a time exactly)."""
        fired: list[int] = []
        start = 0
        while start < len(chunk):
            grow = self._grow_after is not None
            stop = min(len(chunk), start + int(self._grow_after - self._since)) if grow else len(chunk)
            part = chunk[start:stop]
            before = len(self.fired_features)
            hits, missed = self._monitor_span(part)
            fired += [start + e for e in hits]
            if grow:
                self._since += len(part)
                self._missed_since += missed
                for hit in self.fired_features[before:]:
                    self._alarmed_since[hit] = True
                if self._since >= self._grow_after:
                    self._grow_reference()
            start = stop
        self._fired = bool(fired) and fired[-1] == len(chunk) - 1
        if not self._fired:
            self._alarm_scores = None
        return fired

    def _clear(self, rows: np.ndarray | slice) -> None:
        self._s[rows] = 0.0
        self._seen[rows] = 0.0
        self._missed[rows] = 0.0

    def _monitor_span(self, chunk: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Process rows at once (exact CUSUM paths, see ``_cusum``), jumping from one
        alarm to the next; results match one event at a time exactly.  Returns the rows that
        fired and each feature's missing values among them."""
        n = len(chunk)
        n0 = self.n_events
        missed = np.zeros((chunk.shape[1], n + 1))
        np.cumsum(np.isnan(chunk).T, axis=1, out=missed[:, 1:])
        seen = np.arange(n + 1, dtype=float)
        rows = np.flatnonzero(np.isfinite(self._h))
        up, down = quantize(self._up[rows])[:, None], quantize(self._down[rows])[:, None]
        cum = up * missed[rows, 1:] + down * (seen[1:] - missed[rows, 1:])
        s0, h = quantize(self._s[rows])[:, None], self._h[rows][:, None]
        if n <= BLOCK:
            path = CusumPath.walked(cum[:, None], s0, h)
        else:
            path = CusumPath(blocked(cum)[None], None, (np.zeros(1, dtype=np.int64), np.ones(1), np.zeros(1)), n, s0, h)
        base_seen, base_missed, since = self._seen.copy(), self._missed.copy(), 0
        fired: list[int] = []
        e = 0
        while (e := path.next_alarm(e)) < n:
            self.n_events = n0 + e + 1
            self._s[rows] = path.state(e + 1)[:, 0]
            self._seen = base_seen + (seen[e + 1] - since)
            self._missed = base_missed + (missed[:, e + 1] - missed[:, since])
            hit = np.flatnonzero(self._s >= self._h)
            fired.append(e)
            self.fired_features.append(hit)
            self._alarm(hit)
            path.restart(np.flatnonzero(np.isin(rows, hit)), e + 1)
            base_seen, base_missed, since = self._seen.copy(), self._missed.copy(), e + 1
            e += 1
        self._s[rows] = path.state(n)[:, 0]
        self._seen = base_seen + (seen[n] - since)
        self._missed = base_missed + (missed[:, n] - missed[:, since])
        self.n_events = n0 + n
        return fired, missed[:, n]

    def _alarm(self, hit: np.ndarray) -> None:
        self._alarm_scores = self._s / self._h
        self.alarms += 1
        detail = [
            {
                "feature": self._name(f),
                "component": "missing_rate_up",
                "statistic": float(self._s[f]),
                "threshold": float(self._h[f]),
                "reference_rate": float(self._p_hat[f]),
                "tuned_for_rate": float(self._p1[f]),
                "recent_rate": float(self._missed[f] / max(self._seen[f], 1.0)),
                "recent_events": int(self._seen[f]),
            }
            for f in hit[:5]
        ]
        self._last_alarm = {"event": self.n_events - 1, "features": [self._name(f) for f in hit], "detail": detail}
        self._clear(hit)

    @property
    def scores(self) -> np.ndarray:
        """Per-feature CUSUM over threshold."""
        if self.phase == "learning":
            return np.zeros(0)
        return (self._alarm_scores if self._alarm_scores is not None else self._s / self._h).copy()

    @property
    def score(self) -> float:
        s = self.scores
        return float(s.max()) if s.size else 0.0
