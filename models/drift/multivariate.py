"""Multivariate drift across a model's features: whitened energy and window mean."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from models.base import check_int
from models.calibration import DEFAULT_BUDGET, SAFETY, FalseAlarmBudget, chi2_window_threshold
from models.drift._cusum import CusumBank
from models.drift._reference import MIN_SD, NormalScores
from models.drift._warmup import WarmupDetector, check_allowances, check_reference_args

__all__ = ["MultivariateDrift"]

#: The energy score is clipped here: its far tail depends on every feature's
#: extrapolated reference tail, so single extreme events must not decide alone.
_G_CLIP = 3.0


class MultivariateDrift(WarmupDetector):
    """Joint drift of ``F`` numeric features, including changes in their correlation.

    After the warm-up, each event's normal scores ``z`` (see ``_reference``;
    missing values count as 0, features with fewer than 20 distinct warm-up
    values are left out) are whitened with the reference covariance:
    ``w = L^-1 (z - m)`` (``L L^T`` is the reference covariance with each
    variance raised to at least ``_reference.MIN_SD ** 2``: a feature whose values often tie, say one
    value 95 % of the time, has normal scores of smaller variance, and scaling
    its untied values up to unit variance would give them far heavier tails than
    the calibration assumes; the larger covariance only lowers both statistics).
    If no feature is used, nothing is scored and no alarm is raised.
    Two components:

    * **energy**: Hotelling's ``T^2 = |w|^2`` maps through its exact law with an
      estimated mean and covariance (``F(d, n - d)``) to a N(0, 1) score
      (clipped at 3), watched by upward CUSUMs at ``allowances``: it rises when
      any direction of the data spreads or the correlations break;
    * **mean**: every ``window`` events, ``window |mean(w)|^2 / (1 + window/n)``,
      chi-squared with ``d`` degrees of freedom without change: small shifts
      spread over many features add up here.

    Thresholds follow the ``budget`` (for the model, not per feature), split
    evenly; the CUSUM ones allow for the finite warm-up.  ``score`` is the
    largest component over its threshold (fires at 1.0).

    Parameters
    ----------
    warmup
        Events in the reference warm-up (at least 100, and more than the
        number of features plus 10).
    budget
        False alarms per million events.
    allowances
        Energy CUSUM allowances, in sd of its N(0, 1) score.
    window
        Events per mean test (at least 10).
    features
        Optional feature names; fixes the number of features.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(11)
    >>> cov = [[1.0, 0.9], [0.9, 1.0]]
    >>> xs = rng.multivariate_normal([0, 0], cov, size=4000)
    >>> xs[3000:, 1] = rng.normal(size=1000)  # correlation breaks, marginals stay N(0, 1)
    >>> det = MultivariateDrift(warmup=2000)
    >>> int(det.update_many(xs)[0])
    3032
    """

    name = "multivariate_drift"

    def __init__(
        self,
        warmup: int = 5000,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        allowances: tuple[float, ...] = (0.25, 0.5),
        window: int = 200,
        features: tuple[str, ...] | None = None,
    ) -> None:
        check_reference_args(warmup, budget, features)
        check_allowances("allowances", allowances)
        check_int("window", window, 10)
        self.warmup, self.budget, self.allowances = warmup, budget, allowances
        self.window, self.features = window, features
        self.relearn()

    def _start(self, sample: np.ndarray) -> None:
        if sample.shape[1] + 10 >= len(sample):
            raise ValueError(f"warmup of {len(sample)} events is too short for {sample.shape[1]} features")
        self._ref = ref = NormalScores(sample)
        self._used = np.flatnonzero(ref.usable & (ref.distinct >= 20))
        z = np.nan_to_num(ref.transform(sample)[:, self._used])
        n, d = float(len(sample)), max(self._used.size, 1)
        self._n, self._d = n, d
        self._m = z.mean(0)
        cov = np.cov(z, rowvar=False).reshape(self._used.size, self._used.size) + 1e-9 * np.eye(self._used.size)
        # Variances far below 1 (a feature's tied values share one score) are raised to
        # MIN_SD^2: whitening by them would stretch the untied values far beyond N(0, 1);
        # adding to the diagonal only lowers T^2 and the window statistic (conservative).
        cov += np.diag(np.maximum(0.0, MIN_SD**2 - np.diag(cov)))
        self._whiten = np.linalg.inv(np.linalg.cholesky(cov)) if self._used.size else np.zeros((0, 0))
        self._t2_scale = n * (n - d) / (d * (n + 1) * (n - 1))
        cols = [(0, 1, float(k)) for k in self.allowances]
        rate = self._rate()
        self._bank = CusumBank(cols, rate, np.array([n]), np.array([self._used.size > 0]))
        self._crit = chi2_window_threshold(d, self.window, rate)
        self._acc = np.zeros(self._used.size)  # no feature used: empty sums, the mean test stays at 0
        self._acc_z = np.zeros(self._used.size)
        self._acc_n = 0
        self._mean_ratio = 0.0
        self._alarm_score: float | None = None

    def _rate(self) -> float:
        """False alarms per event of each test: the budget's, split over the CUSUMs and the window."""
        return SAFETY * self.budget.alpha / (len(self.allowances) + 1)

    def _thresholds(self) -> None:
        self._bank.set_rate(self._rate(), np.array([self._n]))
        self._crit = chi2_window_threshold(self._d, self.window, self._rate())

    def _clear(self, rows: np.ndarray | slice) -> None:
        self._bank.clear()
        self._acc[:] = 0.0
        self._acc_z[:] = 0.0
        self._acc_n = 0
        self._mean_ratio = 0.0

    def _monitor(self, chunk: np.ndarray) -> list[int]:
        """Process a batch at once, jumping between CUSUM crossings and mean tests; sums
        of ``w`` run in event order, so results match one event at a time exactly."""
        n, n0 = len(chunk), self.n_events
        z = np.nan_to_num(self._ref.transform(chunk)[:, self._used]) - self._m
        w = z @ self._whiten.T
        t2 = np.einsum("ij,ij->i", w, w) * self._t2_scale
        u = special.fdtr(self._d, self._n - self._d, t2)
        g = np.clip(special.ndtri(u), -_G_CLIP, _G_CLIP)
        path = self._bank.run([g[:, None]], np.ones((n, 1), dtype=bool))
        wt, zt = np.ascontiguousarray(w.T), np.ascontiguousarray(z.T)
        fired: list[int] = []
        e, start = 0, 0  # events [start, e) of the batch are not yet in the window sums
        while True:
            e_mean = start + self.window - self._acc_n - 1
            e = min(path.next_alarm(e), e_mean)
            if e >= n:
                break
            hit = bool((path.first == e).any())
            if e == e_mean:
                self._add(wt, zt, start, e + 1)
                start = e + 1
                stat = float(self._acc @ self._acc) / self.window / (1.0 + self.window / self._n)
                self._mean_ratio = stat / self._crit
                self._last_means = self._acc_z / self.window
                hit = hit or self._mean_ratio >= 1.0
                self._acc[:] = 0.0
                self._acc_z[:] = 0.0
                self._acc_n = 0
            if hit:
                self.n_events = n0 + e + 1
                fired.append(e)
                self.fired_features.append(self._used.copy())
                self._alarm(self._bank.at(path, e + 1))
                path.restart(np.arange(path.first.size), e + 1)
                start = e + 1
            e += 1
        self._add(wt, zt, start, n)
        self._bank.finish(path)
        self.n_events = n0 + n
        self._fired = bool(fired) and fired[-1] == n - 1
        if not self._fired:
            self._alarm_score = None
        return fired

    def _add(self, wt: np.ndarray, zt: np.ndarray, a: int, b: int) -> None:
        """Add events ``[a, b)`` (columns of ``wt``, ``zt``) to the window sums, in order."""
        if b > a:
            self._acc = np.cumsum(np.column_stack([self._acc, wt[:, a:b]]), axis=1)[:, -1].copy()
            self._acc_z = np.cumsum(np.column_stack([self._acc_z, zt[:, a:b]]), axis=1)[:, -1].copy()
            self._acc_n += b - a

    def _alarm(self, s: np.ndarray) -> None:
        ratios = np.append(np.where(np.isinf(self._bank.h), 0.0, s / self._bank.h)[0], self._mean_ratio)
        c = int(np.argmax(ratios))
        self._alarm_score = float(ratios[c])
        self.alarms += 1
        energy = c < len(self.allowances)
        alarm: dict[str, Any] = {
            "event": self.n_events - 1,
            "component": self._bank.labels(["energy"])[c] if energy else "mean(chi2)",
            "statistic": float(s[0, c] if energy else self._mean_ratio * self._crit),
            "threshold": float(self._bank.h[0, c] if energy else self._crit),
        }
        if c == len(self.allowances):
            top = np.argsort(-np.abs(self._last_means))[:5]
            alarm["top_features"] = {self._name(int(self._used[i])): float(self._last_means[i]) for i in top}
        self._last_alarm = alarm
        self._clear(slice(None))

    @property
    def score(self) -> float:
        if self.phase == "learning":
            return 0.0
        if self._alarm_score is not None:
            return self._alarm_score
        return float(max(self._bank.ratios().max(), self._mean_ratio))
