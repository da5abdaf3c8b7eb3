"""Confidence and prediction drift: what the model says, not what it is fed."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget
from models.drift.categorical import CategoricalDrift
from models.drift.numeric import NumericDrift

__all__ = ["ConfidenceDrift", "PredictionDrift", "entropy"]


def entropy(probabilities: Any) -> float:
    """Shannon entropy (nats) of a probability vector; NaN if it is empty or invalid.

    >>> round(entropy([0.5, 0.5]), 4), entropy([1.0, 0.0])
    (0.6931, 0.0)
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 1 or p.size == 0:
        return float("nan")
    return float(confidence_entropy(p[None])[1][0])


def confidence_entropy(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest share and entropy (nats) of each row of ``p`` ``(n, K)``, ``K >= 1``.

    Rows with a non-finite or negative entry, or no positive sum, give NaN.
    Each row's result does not depend on the other rows.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total = p.sum(axis=1)
        ok = np.isfinite(p).all(axis=1) & ~(p < 0).any(axis=1) & (total > 0)
        q = p / total[:, None]
        terms = q * np.log(q)
        zero = q == 0
        terms[zero] = 0.0  # 0 log 0 = 0
        h = -terms.sum(axis=1) + 0.0
        conf = p.max(axis=1) / total
    if p.shape[1] >= 8:  # numpy sums 8+ terms pairwise: leave zeros out, as one row alone would
        for i in np.flatnonzero(ok & zero.any(axis=1)):
            h[i] = -terms[i, ~zero[i]].sum() + 0.0
    return np.where(ok, conf, np.nan), np.where(ok, h, np.nan)


class ConfidenceDrift(NumericDrift):
    """Drift of the model's confidence and of the entropy of its probabilities.

    A :class:`NumericDrift` over two features, ``confidence`` and ``entropy``.
    An observation is either a confidence in ``[0, 1]`` (entropy then counts as
    missing) or a probability vector (confidence = its largest probability).
    Because ``NumericDrift`` works on normal scores of the reference
    distribution, no logit transform is needed: the statistics are the same
    for any monotone transform, and the evidence stays in the original units.
    Parameters are those of :class:`NumericDrift` without ``features``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> det = ConfidenceDrift(warmup=1000)
    >>> conf = np.concatenate([rng.beta(8, 2, 3000), rng.beta(6, 2, 2000)])
    >>> int(det.update_many(conf)[0])
    3132
    """

    name = "confidence_drift"

    def __init__(
        self,
        warmup: int = 5000,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        allowances: tuple[float, ...] = (0.125, 0.25, 0.5),
        scale_allowances: tuple[float, ...] = (0.125, 0.25, 0.5),
        windows: tuple[int, ...] = (250, 1000),
        bins: int = 10,
        recent: int = 256,
    ) -> None:
        super().__init__(warmup, budget, allowances, scale_allowances, windows, bins, ("confidence", "entropy"), recent)

    @staticmethod
    def _row(obs: Any) -> tuple[float, float]:
        if obs is None:
            return (np.nan, np.nan)
        arr = np.asarray(obs, dtype=float)
        if arr.ndim == 0:
            c = float(arr)
            return (c if 0.0 <= c <= 1.0 else np.nan, np.nan)
        if arr.ndim != 1 or arr.size == 0:
            return (np.nan, np.nan)
        conf, h = confidence_entropy(arr[None])
        return (float(conf[0]), float(h[0]))

    def _rows(self, xs: Any) -> np.ndarray:
        if isinstance(xs, np.ndarray) and xs.dtype != object and xs.ndim == 1:
            c = xs.astype(float)
            return np.column_stack([np.where((c >= 0) & (c <= 1), c, np.nan), np.full(c.size, np.nan)])
        if isinstance(xs, np.ndarray) and xs.dtype != object and xs.ndim == 2 and xs.shape[1]:
            return np.column_stack(confidence_entropy(np.ascontiguousarray(xs, dtype=float)))
        return np.array([self._row(o) for o in xs], dtype=float).reshape(-1, 2)

    def _learn_one(self, x: Any) -> None:
        self._run(np.array([self._row(x)], dtype=float))


class PredictionDrift(CategoricalDrift):
    """Shift in the shares of predicted classes: a :class:`CategoricalDrift` on ``prediction``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(4)
    >>> preds = np.concatenate([rng.choice(3, 4000, p=[0.6, 0.3, 0.1]), rng.choice(3, 2000, p=[0.5, 0.3, 0.2])])
    >>> det = PredictionDrift(warmup=2000)
    >>> int(det.update_many(preds.tolist())[0])
    4462
    """

    name = "prediction_drift"
