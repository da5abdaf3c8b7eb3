"""Statistics the benchmarks share."""

from __future__ import annotations

from scipy import stats

__all__ = ["poisson_upper"]


def poisson_upper(k: int, conf: float = 0.95) -> float:
    """Exact upper ``conf`` bound of a Poisson mean from ``k`` counts (chi-square quantile).

    >>> round(poisson_upper(0), 3), round(poisson_upper(13), 2)
    (2.996, 20.67)
    """
    return float(stats.chi2.ppf(conf, 2 * k + 2) / 2)
