"""Drift detectors: input features, confidence and predictions.

Every detector follows :class:`models.base.Detector` and the same lifecycle:
it *learns* a reference from its first ``warmup`` events (or from a baseline
via ``learn_reference``), then *monitors*; ``freeze()`` ends the warm-up early,
``reset()`` restarts the change statistics, ``relearn()`` starts a new warm-up.
Thresholds follow one :class:`models.calibration.FalseAlarmBudget` (false
alarms per million events, per feature for the per-feature detectors),
including the effect of learning the reference from a finite warm-up; they
plan for ``models.calibration.SAFETY`` (0.7) of it, a margin for the
approximations, checked by ``bench.drift_suite`` on no-change streams.
``score`` is the largest component statistic over its threshold, so
``threshold`` is 1.0; ``evidence()`` names the component that fired and the
reference against the recent values.

Vectorised detectors take one event's values as a 1-D array (one entry per
feature, NaN = missing) and keep ``F`` independent statistics; ``scores`` gives
each feature's score and ``fired_features`` lists, for each row that fired in
the last ``update``/``update_many`` call, the features that fired.  After an
alarm a feature's change statistics restart, so a change that persists
fires again about once per detection delay.

==========================  =====================================================
``NumericDrift``            location / scale CUSUM banks + sliding shape tests, per feature
``MultivariateDrift``       whitened energy CUSUM + window mean test, across features
``MissingRate``             Bernoulli CUSUM on each feature's missing rate
``CategoricalDrift``        category counts vs exact limits in 5 windows + share-rise CUSUMs
``ConfidenceDrift``         ``NumericDrift`` on confidence and entropy
``PredictionDrift``         ``CategoricalDrift`` on the predicted class
==========================  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.base import Detector
from models.drift.categorical import CategoricalDrift
from models.drift.confidence import ConfidenceDrift, PredictionDrift, entropy
from models.drift.missing_rate import MissingRate
from models.drift.multivariate import MultivariateDrift
from models.drift.numeric import NumericDrift

__all__ = [
    "CONFORMANCE_CASES",
    "CategoricalDrift",
    "ConfidenceDrift",
    "MissingRate",
    "MultivariateDrift",
    "NumericDrift",
    "PredictionDrift",
    "entropy",
]


def _numeric_stream(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(1500, 3))
    xs[900:, 0] += 1.5
    xs[1100:, 2] *= 2.5
    xs[rng.random(xs.shape) < 0.02] = np.nan
    return xs


def _missing_stream(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(1500, 2))
    xs[rng.random(xs.shape) < np.where(np.arange(1500)[:, None] < 800, 0.02, 0.2)] = np.nan
    return xs


def _category_stream(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    head = rng.choice(["a", "b", "c"], 800, p=[0.6, 0.3, 0.1])
    tail = rng.choice(["a", "b", "c", "z"], 700, p=[0.3, 0.3, 0.2, 0.2])
    out = np.concatenate([head, tail]).astype(object)
    out[rng.random(1500) < 0.01] = None
    return out


def _confidence_stream(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(1500, 4)) * np.where(np.arange(1500)[:, None] < 900, 2.0, 0.7)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


#: ``(factory, stream)`` pairs for the shared conformance suite; each stream
#: has a change the detector catches within its length.
CONFORMANCE_CASES: list[tuple[Callable[[], Detector], Callable[[int], np.ndarray]]] = [
    (lambda: NumericDrift(warmup=500, windows=(100,)), _numeric_stream),
    (lambda: MultivariateDrift(warmup=500, window=50), _numeric_stream),
    (lambda: MissingRate(warmup=500), _missing_stream),
    (lambda: CategoricalDrift(warmup=500, windows=(50, 100)), _category_stream),
    (lambda: PredictionDrift(warmup=500, windows=(50, 100)), _category_stream),
    (lambda: ConfidenceDrift(warmup=500, windows=(100,)), _confidence_stream),
]
