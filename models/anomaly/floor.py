"""The fixed part of a latency: the floor a LatencyAnomaly subtracts before its ``asinh`` map.

A request's latency is a fixed part (the service time it cannot go below) plus a
variable part (queueing, load) that wanders.  ``asinh(x)`` (``log(2x)`` in
milliseconds) makes a lognormal latency homoscedastic, but not a shifted one:
with ``x = floor + v``, the spread of ``y = asinh(x)`` (and of its steps and
whitening innovations) shrinks as ``v`` falls towards 0 and grows with it, so on
latency that wanders with load the large surprisals cluster while the level is
high, and the CUSUMs, calibrated for independent ones, raise several times their
budget.  Mapping ``asinh((x - floor) / scale)`` instead takes the log of the
variable part, which is homoscedastic again.

:func:`estimate_floor` fits the threshold of a three-parameter lognormal by
quantile matching: the ``c`` for which ``log(x - c)`` is symmetric about its
median at the 10th and 90th percentiles,
``c = (q90 * q10 - q50 ** 2) / (q90 + q10 - 2 * q50)`` (``c = 0`` for a plain
lognormal, meaningless for a symmetric or left-skewed one).  Only a floor
that is most of the low values (at least half of the 10th percentile's excess
over ``min_value``) of clearly right-skewed values, below the lowest one,
counts; otherwise there is no floor, and the values are mapped as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PLAIN", "ValueMap", "estimate_floor"]

#: Parts of the median's excess over the floor per unit of the ``asinh`` map (``log`` regime above ~0.1 of it).
_SCALE_PARTS = 20.0
#: Least quantile skewness ``(q90 + q10 - 2 q50) / (q90 - q10)`` of values with a floor (a symmetric
#: sample's wanders around 0 by up to ~0.1 when autocorrelated).
_MIN_SKEW = 0.2


@dataclass(frozen=True)
class ValueMap:
    """The map ``y = asinh((x - floor) / scale)`` a LatencyAnomaly scores (monotone, so ranks are kept)."""

    floor: float = 0.0
    scale: float = 1.0

    def __call__(self, x: float) -> float:
        return math.asinh((x - self.floor) / self.scale)

    def many(self, x: np.ndarray) -> np.ndarray:
        """The map of each of the values ``x``."""
        return np.arcsinh((x - self.floor) / self.scale)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """The values ``x`` of mapped values ``y``."""
        return self.floor + self.scale * np.sinh(y)


#: ``asinh(x)``: no floor (``x - 0.0`` and ``x / 1.0`` are ``x`` exactly).
PLAIN = ValueMap()


def estimate_floor(xs: Sequence[float], min_value: float) -> ValueMap | None:
    """The map net of the floor of the values ``xs`` (a reference with no change), or ``None`` if they have no floor.

    The values must be clearly right-skewed (quantile skewness at least 0.2: on
    symmetric values the estimate is noise) and the floor below the lowest value;
    ``scale`` is the median's excess over it over ``20``.

    >>> rng = np.random.default_rng(0)
    >>> round(estimate_floor(5.0 + rng.lognormal(0.0, 0.7, 2000), 0.0).floor, 1)
    5.0
    >>> estimate_floor(rng.lognormal(3.0, 0.4, 2000), 0.0) is None  # a plain lognormal: no floor
    True
    >>> estimate_floor(rng.normal(50.0, 1.0, 2000), 0.0) is None  # symmetric: no floor
    True
    """
    x = np.asarray(xs, dtype=float)
    q10, q50, q90 = np.quantile(x, (0.1, 0.5, 0.9))
    den = q90 + q10 - 2.0 * q50
    if not den >= _MIN_SKEW * (q90 - q10) > 0.0:  # not clearly right-skewed: no floor to find
        return None
    c = (q90 * q10 - q50 * q50) / den
    if not (min_value + 0.5 * (q10 - min_value) < c < float(x.min())):
        return None
    return ValueMap(float(c), float(q50 - c) / _SCALE_PARTS)
