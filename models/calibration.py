"""False-alarm budget: the single setting from which every threshold follows.

The user states how many false alarms per million events one detector may
raise on a stream with no change.  Each detector turns that into its threshold,
from theory (e.g. Siegmund's approximation of a CUSUM's average run length) or
by simulation on its reference data; this module holds the shared conversions.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["FalseAlarmBudget", "DEFAULT_BUDGET", "check_budget"]


@dataclass(frozen=True, slots=True)
class FalseAlarmBudget:
    """Expected false alarms per million events, per detector, with no change.

    >>> FalseAlarmBudget(1.0).arl
    1000000.0
    >>> FalseAlarmBudget.per_day(2.0, events_per_second=10.0).per_million
    2.314814814814815
    """

    per_million: float = 1.0

    def __post_init__(self) -> None:
        if not (self.per_million > 0 and self.per_million < 1e6):
            raise ValueError(f"per_million must be in (0, 1e6), got {self.per_million!r}")

    @property
    def arl(self) -> float:
        """Average run length to a false alarm, in events."""
        return 1e6 / self.per_million

    @property
    def alpha(self) -> float:
        """Per-event false-alarm probability (for fixed-sample tests run every event)."""
        return self.per_million / 1e6

    @classmethod
    def per_day(cls, alarms_per_day: float, events_per_second: float) -> FalseAlarmBudget:
        """Budget from alarms per day at a given event rate."""
        if alarms_per_day <= 0 or events_per_second <= 0:
            raise ValueError("alarms_per_day and events_per_second must be > 0")
        return cls(per_million=alarms_per_day * 1e6 / (events_per_second * 86_400.0))


#: The default: at most one false alarm per million events per detector.
DEFAULT_BUDGET = FalseAlarmBudget(1.0)


def check_budget(budget: object) -> None:
    """Raise ``ValueError`` unless ``budget`` is a ``FalseAlarmBudget``."""
    if not isinstance(budget, FalseAlarmBudget):
        raise ValueError(f"budget must be a FalseAlarmBudget, got {budget!r}")


# -- CUSUM thresholds ---------------------------------------------------------
#
# Shared by the drift detectors.  Every CUSUM in ``models.drift`` runs on a
# statistic that is (close to) N(0, 1) on a stream without change, once the
# reference has been learned; Siegmund's corrected-diffusion approximation then
# gives its average run length in closed form.  The reference itself is
# estimated from ``n`` warm-up events, so the in-control mean of the statistic
# is off by ``e ~ N(0, tau^2 / n)``; a small ``e`` costs a lot of run length
# at small allowances.  The thresholds below hold the false-alarm *rate*
# averaged over that estimation error (what a fleet of detectors, each with its
# own warm-up, sees) within the budget.

#: Siegmund's overshoot correction for a unit-variance Gaussian CUSUM (2 * 0.583).
SIEGMUND_RHO = 1.166
#: Share of the budget detectors plan for, leaving a margin for the
#: approximations (Siegmund, chi-squared tails, reference error): a fleet of
#: 200 simulated detectors at the full budget measured 1.2 per million, and
#: 0.95 per million at 0.8 of it.
SAFETY = 0.7

__all__ += [
    "SAFETY",
    "siegmund_arl",
    "gaussian_cusum_threshold",
    "bernoulli_cusum_threshold",
    "chi2_window_threshold",
]


def siegmund_arl(drift: np.ndarray | float, h: float) -> np.ndarray | float:
    """Average run length of ``S = max(0, S + y - k)`` with ``y - k ~ N(drift, 1)``.

    Siegmund (1985): ``ARL = (exp(-2 d b) + 2 d b - 1) / (2 d^2)``, ``b = h + 1.166``.

    >>> round(float(siegmund_arl(-0.125, 40.2)))
    991397
    >>> round(float(siegmund_arl(0.125, 40.2)))
    299
    """
    d = np.asarray(drift, dtype=float)
    b = h + SIEGMUND_RHO
    t = -2.0 * d * b
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        den = np.where(np.abs(t) < 1e-6, t * t / 2.0, np.expm1(t) - t)
        arl = np.where(np.abs(t) < 1e-6, b * b, den / (2.0 * d * d))
    return arl if arl.ndim else float(arl)


def _rate_with_estimation(k: float, h: float, sd: float) -> float:
    """False alarms per event of one CUSUM, averaged over reference error ``N(0, sd^2)``."""
    if sd == 0.0:
        return 1.0 / float(siegmund_arl(-k, h))
    e = np.linspace(-8.0, 8.0, 321) * sd
    w = np.exp(-0.5 * (e / sd) ** 2)
    w /= w.sum()
    return float(np.sum(w / siegmund_arl(e - k, h)))


@functools.lru_cache(maxsize=1024)
def gaussian_cusum_threshold(k: float, rate: float, n_ref: float = math.inf, tau: float = 1.0) -> float:
    """Threshold ``h`` of a one-sided Gaussian CUSUM with allowance ``k``.

    ``rate`` is the false alarms per event this CUSUM may raise; ``n_ref`` the
    number of reference events (``inf``: reference known); ``tau`` the standard
    deviation of the in-control statistic's mean error times ``sqrt(n_ref)``.
    Returns ``inf`` when no threshold below 1e4 meets the rate (reference too short
    for so small an allowance).

    >>> round(gaussian_cusum_threshold(0.125, 1e-6), 1)
    40.2
    >>> round(gaussian_cusum_threshold(0.125, 1e-6, n_ref=5000), 1)
    42.1
    """
    if not (k > 0 and 0 < rate < 1 and n_ref > 1 and tau >= 0):
        raise ValueError(f"need k > 0, 0 < rate < 1, n_ref > 1, tau >= 0; got {k}, {rate}, {n_ref}, {tau}")
    sd = 0.0 if math.isinf(n_ref) else tau / math.sqrt(n_ref)
    lo, hi = 0.0, 1e4
    if _rate_with_estimation(k, hi, sd) > rate:
        return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _rate_with_estimation(k, mid, sd) > rate:
            lo = mid
        else:
            hi = mid
    return hi


def _tilt_roots(p0: np.ndarray, a: float, b: float) -> np.ndarray:
    """Roots ``theta > 0`` of ``p0 e^(theta a) + (1 - p0) e^(-theta b) = 1``, one per ``p0`` (0 where none),
    by bisection (all at once)."""
    out = np.zeros(p0.shape)
    has = p0 * a - (1 - p0) * b < 0
    q = p0[has]
    f = lambda t: np.log(q) + t * a - np.log1p(-(1 - q) * np.exp(-t * b))  # noqa: E731
    lo, hi = np.full(q.shape, 1e-9), np.ones(q.shape)
    while (short := f(hi) < 0).any():
        hi[short] *= 2.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = f(mid) < 0
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    out[has] = hi
    return out


def _bernoulli_rates(p: np.ndarray, a: float, b: float, h: float, theta: np.ndarray) -> np.ndarray:
    """False alarms per event of the CUSUM with increments ``+a`` (prob ``p``) / ``-b``, per ``p``.

    Wald-Siegmund form ``ARL = (exp(theta h) - theta h - 1) / (theta |mu|)`` with
    ``theta`` the root of ``E[exp(theta * increment)] = 1`` and ``mu`` the mean
    increment (no overshoot correction, which errs on the safe side); when the
    increments drift upwards, the Gaussian-moment Siegmund formula.
    """
    mu = p * a - (1 - p) * b
    up = mu >= 0
    rates = np.empty(p.shape)
    if up.any():
        sd = np.sqrt(p[up] * (1 - p[up])) * (a + b)
        rates[up] = 1.0 / np.asarray(siegmund_arl(mu[up] / sd, h / sd))
    th = theta[~up] * h
    with np.errstate(over="ignore"):
        arl = np.where(th < 700, (np.expm1(np.minimum(th, 700.0)) - th) / (theta[~up] * -mu[~up]), np.inf)
    rates[~up] = 1.0 / arl
    return rates


@functools.lru_cache(maxsize=1024)
def bernoulli_cusum_threshold(p0: float, p1: float, rate: float, n_ref: float = math.inf) -> float:
    """Threshold of the Bernoulli log-likelihood-ratio CUSUM for ``p0 -> p1``.

    The run length follows the Wald-Siegmund approximation (see
    ``_bernoulli_rates``); with ``n_ref`` reference events the true in-control
    rate is integrated over its Beta posterior around the estimate ``p0``, so
    the budget holds on average over warm-ups (planning for ``SAFETY`` of it).

    >>> round(bernoulli_cusum_threshold(0.02, 0.04, 1e-6), 2)
    8.76
    """
    if not (0 < p0 < p1 < 1 and 0 < rate < 1 and n_ref > 1):
        raise ValueError(f"need 0 < p0 < p1 < 1, 0 < rate < 1, n_ref > 1; got {p0}, {p1}, {rate}, {n_ref}")
    a, b = math.log(p1 / p0), math.log((1 - p0) / (1 - p1))
    if math.isinf(n_ref):
        nodes, weights = np.array([p0]), np.array([1.0])
    else:
        # The posterior around the estimate is a little narrower than the sampling
        # spread of estimates below the true rate: simulated fleets ran ~10 % over.
        rate *= SAFETY
        x = p0 * n_ref
        u = np.linspace(-5.0, 5.0, 101)  # quantiles on a normal-score grid: tails resolved
        nodes = np.asarray(stats.beta.ppf(stats.norm.cdf(u), x + 0.5, n_ref - x + 0.5), dtype=float)
        weights = stats.norm.pdf(u) / stats.norm.pdf(u).sum()

    thetas = _tilt_roots(nodes, a, b)

    def avg_rate(h: float) -> float:
        return float(np.dot(weights, _bernoulli_rates(nodes, a, b, h, thetas)))

    lo, hi = 0.0, 1e3
    if avg_rate(hi) > rate:
        return math.inf
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if avg_rate(mid) > rate else (lo, mid)
    return hi


@functools.lru_cache(maxsize=1024)
def chi2_window_threshold(df: int, window: int, rate: float) -> float:
    """Critical value of a chi-squared test run once per ``window`` events.

    One test per window at level ``window * rate`` gives ``rate`` false alarms per event.

    >>> round(chi2_window_threshold(9, 1000, 1e-6), 2)
    27.88
    """
    if not (df >= 1 and window >= 1 and 0 < rate * window < 1):
        raise ValueError(f"need df >= 1, window >= 1, 0 < rate * window < 1; got {df}, {window}, {rate}")
    return float(stats.chi2.isf(window * rate, df))
