"""Anomaly detectors: latency per model+host, GPU telemetry per device.

Both follow :class:`models.base.Detector`: ``update(x)`` learns one observation
(a float latency for :class:`LatencyAnomaly`; a 1-D array in
``dcgm.OBSERVATION_FIELDS`` order, NaN = missing, for :class:`GpuAnomaly`),
``update_many(xs)`` returns the indices that fired, ``score`` is in [0, 1]
(high = anomalous) and ``threshold`` (0.5) is calibrated from a
:class:`~models.calibration.FalseAlarmBudget`.  Scores are conformal p-values
turned into surprisals and accumulated by CUSUMs
(:mod:`models.anomaly.cusum_calibration`), so the calibration holds for any
distribution of a stream with no change, heavy tails included.  ``evidence()``
names the kind of anomaly (spike, level_shift, jump, volatility, drop, hard_signal)
and what drove it.

``CONFORMANCE_CASES`` lists ``(factory, stream)`` pairs for the shared
conformance suite: ``stream(seed)`` returns a seeded array of observations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.anomaly.dcgm import OBSERVATION_FIELDS, dcgm_observation
from models.anomaly.gpu_anomaly import GpuAnomaly
from models.anomaly.latency_anomaly import LatencyAnomaly
from models.base import Detector

__all__ = ["LatencyAnomaly", "GpuAnomaly", "dcgm_observation", "OBSERVATION_FIELDS", "CONFORMANCE_CASES"]


def _latency_stream(seed: int) -> np.ndarray:
    """Lognormal latency (ms) with a spike and a doubling of the level."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(np.log(25.0), 0.3, 1500)
    x[700] *= 20.0
    x[1100:] *= 2.0
    return x


def _gpu_stream(seed: int) -> np.ndarray:
    """Busy GPU samples with a utilisation drop, missing fields and one XID."""
    rng = np.random.default_rng(seed)
    n = 800
    obs = np.full((n, len(OBSERVATION_FIELDS)), np.nan)
    obs[:, 0] = rng.normal(85.0, 4.0, n)
    obs[:, 1] = rng.normal(0.6, 0.02, n)
    obs[:, 2] = rng.normal(70.0, 1.5, n)
    obs[:, 3] = rng.normal(300.0, 15.0, n)
    obs[:, 4] = 1410.0
    obs[:, 6] = 0.0
    obs[:, 7] = 0.0
    obs[600:, 0] = rng.normal(20.0, 4.0, n - 600)
    obs[::7, 2] = np.nan
    obs[700, 7] = 48.0
    return obs


CONFORMANCE_CASES: list[tuple[Callable[[], Detector], Callable[[int], np.ndarray]]] = [
    (lambda: LatencyAnomaly(seed=3), _latency_stream),
    (lambda: GpuAnomaly(seed=3), _gpu_stream),
]
