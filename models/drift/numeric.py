"""Numeric input drift, per feature, vectorised over a model's features."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from models.base import check_int, check_positive
from models.calibration import DEFAULT_BUDGET, SAFETY, FalseAlarmBudget
from models.drift._cusum import CusumBank
from models.drift._reference import MIN_SD, Z_CLIP, GridRanks, NormalScores, recent_summary
from models.drift._warmup import WarmupDetector, check_allowances, check_reference_args
from models.drift._window import SlidingChi2

__all__ = ["NumericDrift"]


class NumericDrift(WarmupDetector):
    """Drift of ``F`` numeric features: location, scale and shape, each calibrated.

    Lifecycle: *learning* for the first ``warmup`` events (the reference: per
    feature quantiles, see ``_reference``), then *monitoring*.  ``freeze()``
    ends learning early, ``learn_reference(xs)`` loads a baseline, ``reset()``
    clears the change statistics, ``relearn()`` starts a new warm-up.

    Each event's values become normal scores ``z`` (N(0, 1) without change,
    whatever the feature's distribution), centred and scaled with the warm-up's
    mean and standard deviation of each statistic; a standard deviation far
    below 1 is not scaled up, the divisor is at least ``_reference.MIN_SD`` (a feature with one value most of the time, or many zeros,
    has scores of small spread because tied values share one score: stretching
    them to unit variance would give its other values far heavier tails than
    the Gaussian calibration assumes, and many false alarms).  Per feature,
    three components:

    * **location**: two-sided CUSUMs of ``z`` at each of ``allowances`` (a bank:
      the shift size need not be known; ``k`` suits shifts near ``2 k`` sd);
    * **scale**: two-sided CUSUMs of ``g = Phi^-1(2 Phi(|z|) - 1)``, also N(0, 1)
      without change, whose mean moves when the spread (or the tails) change;
    * **shape**: chi-squared tests of the last ``w`` values against the
      reference in ``bins`` equiprobable bins, for each ``w`` in ``windows``,
      every ``w / 5`` values (sliding; see ``_window``).

    Thresholds follow the ``budget``, split evenly over the components; the
    CUSUM thresholds allow for the reference's estimation error from a finite
    warm-up (see :func:`models.calibration.gaussian_cusum_threshold`) and the
    window tests use the two-sample variance ``(1 + w / n_ref)``.  The
    budget holds per feature.  ``score`` is the largest component statistic
    over its threshold (fires at 1.0); ``scores`` gives it per feature and
    ``fired_features`` which features fired.  After an alarm the feature's
    change statistics restart (its reference stays).  NaN means missing: the
    CUSUMs skip it and the windows (counted in events) leave it out.
    Features with fewer than 20 distinct warm-up values are *discrete*: only
    the window tests watch them.  ``update_many`` works on a whole batch at
    once (see ``_cusum``, ``_window``) with the same results as one event at
    a time; after the warm-up, one event costs under 10 us for 64 features in
    batches of 1,000 (see ``bench.detector_cost``).

    Parameters
    ----------
    warmup
        Events in the reference warm-up (at least 100).
    budget
        False alarms per million events per feature.
    allowances
        Location CUSUM allowances, in sd of ``z``.
    scale_allowances
        Scale CUSUM allowances, in sd of ``g``.
    windows
        Window lengths of the shape tests (each at least ``5 * bins``).
    bins
        Equiprobable bins of the shape test (2 to 100).
    features
        Optional feature names, for evidence; fixes the number of features.
    recent
        Recent raw values kept per feature for evidence.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> det = NumericDrift(warmup=1000, features=("age", "income"))
    >>> xs = rng.normal(size=(3000, 2))
    >>> xs[2000:, 1] += 1.0
    >>> fired = det.update_many(xs)
    >>> int(fired[0]), det.evidence()["last_alarm"]["features"]
    (2026, ['income'])
    """

    name = "numeric_drift"

    def __init__(
        self,
        warmup: int = 5000,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        allowances: tuple[float, ...] = (0.125, 0.25, 0.5),
        scale_allowances: tuple[float, ...] = (0.125, 0.25, 0.5),
        windows: tuple[int, ...] = (250, 1000),
        bins: int = 10,
        features: tuple[str, ...] | None = None,
        recent: int = 256,
    ) -> None:
        check_reference_args(warmup, budget, features)
        check_allowances("allowances", allowances)
        check_allowances("scale_allowances", scale_allowances)
        check_int("bins", bins, 2, 100)
        if not (isinstance(windows, tuple) and windows and all(isinstance(w, int) and w >= 5 * bins for w in windows)):
            raise ValueError(f"windows must be a non-empty tuple of ints >= 5 * bins = {5 * bins}, got {windows!r}")
        check_positive("recent", recent)
        self.warmup, self.budget, self.windows, self.bins = warmup, budget, windows, bins
        self.allowances, self.scale_allowances = allowances, scale_allowances
        self.features, self.recent = features, int(recent)
        self.relearn()

    def _start(self, sample: np.ndarray) -> None:
        ref = NormalScores(sample)
        z = ref.transform(sample)
        self._ref, self._alarm_scores = ref, None
        ys, yg = self._stats(z)
        with warnings.catch_warnings():  # all-missing features: mean of nothing, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            self._mu = np.nan_to_num([np.nanmean(ys, 0), np.nanstd(ys, 0), np.nanmean(yg, 0), np.nanstd(yg, 0)])
        continuous = ref.usable & (ref.distinct >= 20) & (self._mu[1] > 0) & (self._mu[3] > 0)
        cols = [(0, sgn, float(k)) for sgn in (1, -1) for k in self.allowances]
        cols += [(1, sgn, float(k)) for sgn in (1, -1) for k in self.scale_allowances]
        rate = self._rate()
        self._bank = CusumBank(cols, rate, ref.n, continuous)
        self._edges = ndtri(np.arange(1, self.bins) / self.bins)
        binned = [np.searchsorted(self._edges, c[~np.isnan(c)]) for c in z.T]
        counts = np.stack([np.bincount(b, minlength=self.bins) for b in binned])
        p_ref = (counts + 0.5) / (counts.sum(1, keepdims=True) + 0.5 * self.bins)
        self._shape = SlidingChi2(p_ref, ref.n, self.windows, rate)
        # Evidence only: single precision (7 significant digits) halves the largest part of a snapshot.
        self._recent = np.full((self.recent, z.shape[1]), np.nan, dtype=np.float32)
        self._clear(slice(None))

    def _rate(self) -> float:
        """False alarms per event of each test: the budget's, split over the CUSUMs and windows."""
        tests = 2 * (len(self.allowances) + len(self.scale_allowances)) + len(self.windows)
        return SAFETY * self.budget.alpha / tests

    def _thresholds(self) -> None:
        rate = self._rate()
        self._bank.set_rate(rate, self._ref.n)
        self._shape.set_rate(rate)

    def _clear(self, rows: np.ndarray | slice) -> None:
        self._bank.clear(rows)
        self._shape.clear(rows)

    def _stats(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = np.clip(ndtri(2.0 * ndtr(np.abs(z)) - 1.0), -Z_CLIP, Z_CLIP)
        return z, g

    def _monitor(self, chunk: np.ndarray) -> list[int]:
        """Process a batch at once; jumps from one event that matters (a window test or
        a CUSUM crossing) to the next, exactly as one event at a time would."""
        n, n0 = len(chunk), self.n_events
        z = self._ref.transform(chunk)
        ys, yg = self._stats(z)
        ok = ~np.isnan(z)
        # an sd far below 1 (tied values share a score) is not scaled up: see the class docstring
        ys = np.where(ok, (ys - self._mu[0]) / np.maximum(self._mu[1], MIN_SD), 0.0)
        yg = np.where(ok, (yg - self._mu[2]) / np.maximum(self._mu[3], MIN_SD), 0.0)
        self._shape.begin(np.where(ok, self._bin_ranks(np.where(ok, z, 0.0)), self.bins))
        path = self._bank.run([ys, yg], ok)
        tests = self._shape.due(n)
        fired: list[int] = []
        e, k, pushed = 0, 0, 0
        while True:
            while k < len(tests) and tests[k] < e:
                k += 1
            e = min(path.next_alarm(e), int(tests[k]) if k < len(tests) else n)
            if e >= n:
                break
            hit = self._shape.at(e) or bool((path.first == e).any())
            if hit:
                self._push_recent(chunk, n0, pushed, e + 1)
                pushed = e + 1
                self.n_events = n0 + e + 1
                cleared = self._alarm(self._bank.at(path, e + 1))
                path.restart(np.flatnonzero(np.isin(self._bank.rows, cleared)), e + 1)
                fired.append(e)
            e += 1
        self._bank.finish(path)
        self._shape.end(n)
        self._push_recent(chunk, n0, pushed, n)
        self.n_events = n0 + n
        self._fired = bool(fired) and fired[-1] == n - 1
        if not self._fired:
            self._alarm_scores = None
        return fired

    def _bin_ranks(self, z: np.ndarray) -> np.ndarray:
        """Shape-test bin of each normal score: ``searchsorted(edges, z)`` (``z`` not NaN)."""
        if len(z) <= 16:  # a few events: compare with every edge
            return (self._edges < z[..., None]).sum(-1)
        if self._edges.size <= 16:  # count the edges below z
            b = np.zeros(z.shape, dtype=np.int8)
            for edge in self._edges:
                b += z > edge
            return b
        look = getattr(self, "_bin_ranks_table", None)
        if look is None:  # a cache, left out of snapshots
            look = self._bin_ranks_table = GridRanks(np.tile(self._edges, (z.shape[-1], 1)))
        return look.ranks(z)[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_bin_ranks_table", None)
        return state

    def _push_recent(self, chunk: np.ndarray, n0: int, a: int, b: int) -> None:
        """Write events ``[a, b)`` of a batch that began after ``n0`` events into the recent ring."""
        a = max(a, b - self.recent)
        if b > a:
            with np.errstate(over="ignore"):  # beyond single precision: +-inf in the evidence
                self._recent[(n0 + np.arange(a, b)) % self.recent] = chunk[a:b]

    def _alarm(self, s: np.ndarray) -> np.ndarray:
        """Alarm on the current event with CUSUM statistics ``s``; returns the features cleared."""
        ratios = np.concatenate([np.where(np.isinf(self._bank.h), 0.0, s / self._bank.h), self._shape.ratio], axis=1)
        scores = ratios.max(1)
        self._alarm_scores = scores
        self.alarms += 1
        hit = np.flatnonzero(scores >= 1.0)
        self.fired_features.append(hit)
        self._record(hit, ratios, scores, s)
        self._clear(hit)
        return hit

    def _ratios(self) -> np.ndarray:
        return np.concatenate([self._bank.ratios(), self._shape.ratio], axis=1)

    def _record(self, hit: np.ndarray, ratios: np.ndarray, scores: np.ndarray, s: np.ndarray) -> None:
        labels = self._bank.labels(["location", "scale"]) + [f"shape(chi2, window={w})" for w in self.windows]
        stats = np.concatenate([s, self._shape.statistic()], axis=1)
        limits = np.concatenate([self._bank.h, np.broadcast_to(self._shape.crit, self._shape.ratio.shape)], axis=1)
        detail = []
        for f in hit[np.argsort(-scores[hit])][:5]:
            c = int(np.argmax(ratios[f]))
            detail.append(
                {
                    "feature": self._name(f),
                    "component": labels[c],
                    "statistic": float(stats[f, c]),
                    "threshold": float(limits[f, c]),
                    "score": float(scores[f]),
                    "reference": self._ref.summary(f),
                    "recent": recent_summary(self._recent[:, f]),
                }
            )
        self._last_alarm = {"event": self.n_events - 1, "features": [self._name(f) for f in hit], "detail": detail}

    # -- results ---------------------------------------------------------------
    @property
    def score(self) -> float:
        return float(self.scores.max()) if self.scores.size else 0.0

    @property
    def scores(self) -> np.ndarray:
        """Per-feature scores: each feature's largest statistic over threshold."""
        if self.phase == "learning":
            return np.zeros(0 if self._buf is None else self._buf.shape[1])
        if self._alarm_scores is not None:
            return self._alarm_scores.copy()
        return self._ratios().max(1)
