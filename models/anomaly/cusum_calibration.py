"""Thresholds for a CUSUM of surprisals, calibrated from the false-alarm budget.

Both anomaly detectors turn each observation into a p-value ``p`` that is
(close to) uniform on a stream with no change, so the *surprisal*
``s = -ln p`` is Exp(1).  They accumulate it in a CUSUM
``S = max(0, S + s - k)`` and fire when ``S >= h``.  This module finds the
``h`` whose in-control average run length (ARL, events to a false alarm)
equals the budget's, with the Markov-chain approximation of Brook & Evans
(1972): the interval ``[0, h)`` is cut into ``m`` states and the ARL is the
solution of ``(I - P) L = 1``.  A bisection on ``h`` matches the target ARL.
"""

from __future__ import annotations

import functools

import numpy as np

from models.base import check_positive

__all__ = ["check_reference_value", "cusum_arl", "cusum_threshold"]


def check_reference_value(name: str, k: float) -> None:
    """Raise ``ValueError`` unless the CUSUM reference value ``k`` is a finite number > 1
    (the mean surprisal with no change: at or below it the CUSUM drifts up and alarms)."""
    check_positive(name, k)
    if k <= 1.0:
        raise ValueError(f"{name} must be > 1 (the mean surprisal with no change), got {k!r}")


def cusum_arl(k: float, h: float, m: int = 200) -> float:
    """In-control ARL of ``S = max(0, S + Z - k)``, ``Z ~ Exp(1)``, alarm at ``S >= h``.

    >>> round(cusum_arl(1.0, 0.5), 1) < round(cusum_arl(1.0, 3.0), 1)
    True
    """
    if not (k > 0 and h > 0):
        raise ValueError(f"k and h must be > 0, got k={k!r}, h={h!r}")
    delta = 2.0 * h / (2 * m - 1)
    mid = np.arange(m) * delta
    upper = (np.arange(1, m + 1) - 0.5) * delta  # state j covers S' < upper[j]; state 0 holds S' = 0
    # P(S' < e | S = mid_i) = P(Z < k + e - mid_i) for e > 0, with Z ~ Exp(1).
    z = np.clip(k + upper[None, :] - mid[:, None], 0.0, None)
    cdf = -np.expm1(-z)
    trans = np.diff(cdf, axis=1, prepend=0.0)
    arl = np.linalg.solve(np.eye(m) - trans, np.ones(m))
    return float(arl[0])


@functools.lru_cache(maxsize=64)
def cusum_threshold(k: float, arl: float) -> float:
    """Smallest ``h`` whose in-control ARL reaches ``arl``.

    >>> h = cusum_threshold(3.0, 1e6)
    >>> 8.0 < h < 14.0
    True
    """
    if not (k > 0 and arl > 1):
        raise ValueError(f"k must be > 0 and arl > 1, got k={k!r}, arl={arl!r}")
    lo, hi = 1e-3, 1.0
    while cusum_arl(k, hi) < arl:
        lo, hi = hi, hi * 2.0
        if hi > 1e3:
            raise ValueError(f"no threshold reaches ARL {arl!r} for k={k!r}")
    while hi - lo > 1e-4 * hi:
        mid = 0.5 * (lo + hi)
        if cusum_arl(k, mid) < arl:
            lo = mid
        else:
            hi = mid
    return hi
