"""Reference learned from a warm-up: per-feature normal scores, vectorised.

Every numeric drift statistic in ``models.drift`` runs on *normal scores*
``z = Phi^-1(F_ref(x))``: ``F_ref`` is the feature's reference distribution,
kept as quantiles at fixed normal-score points and interpolated linearly in
between (exact for a Gaussian feature, and close for any other continuous one).
On a stream with no change ``z`` is close to N(0, 1) whatever the feature's
distribution, so one calibration (Gaussian CUSUM, Siegmund) serves skewed,
heavy-tailed and bounded features alike.  Beyond the outer quantiles the map
is extrapolated linearly and ``z`` is clipped to ``[-Z_CLIP, Z_CLIP]``.
Tied reference values (discrete features) map to the middle of their score range.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["NormalScores", "Z_CLIP", "floor_2sig", "recent_summary"]

#: Normal-score points at which reference quantiles are kept.
Z_GRID = np.linspace(-2.5, 2.5, 41)
#: Normal scores are clipped here; in-control mass beyond is 6e-5.
Z_CLIP = 4.0
#: Quantile levels reported in evidence.
EVIDENCE_Q = (0.05, 0.25, 0.5, 0.75, 0.95)
_TAIL = 8  # tail slope measured over the 8 outer grid steps (1 sd of z)


def floor_2sig(n: float) -> float:
    """Round down to two significant digits (keeps threshold caches small).

    >>> floor_2sig(5123), floor_2sig(87)
    (5100.0, 87.0)
    """
    if n < 100:
        return float(int(n))
    p = 10.0 ** (int(np.floor(np.log10(n))) - 1)
    return float(np.floor(n / p) * p)


class NormalScores:
    """Per-feature reference quantiles and the normal-score transform."""

    def __init__(self, sample: np.ndarray) -> None:
        sample = np.asarray(sample, dtype=float)
        self.n = np.sum(~np.isnan(sample), axis=0).astype(float)
        n_features = sample.shape[1]
        grid = np.full((n_features, Z_GRID.size), np.nan)
        quant = np.full((n_features, len(EVIDENCE_Q)), np.nan)
        self.distinct = np.zeros(n_features, dtype=np.int64)
        levels = _ndtr(Z_GRID)
        for f in range(n_features):
            col = sample[:, f]
            col = col[~np.isnan(col)]
            if col.size:
                grid[f] = np.quantile(col, levels)
                quant[f] = np.quantile(col, EVIDENCE_Q)
                self.distinct[f] = np.unique(col).size
        self.grid = grid
        self.quantiles = quant
        with warnings.catch_warnings():  # all-missing features give NaN, reported as None
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mean = np.nanmean(sample, axis=0) if sample.size else np.full(n_features, np.nan)
            self.std = np.nanstd(sample, axis=0) if sample.size else np.full(n_features, np.nan)
        dz = Z_GRID[_TAIL] - Z_GRID[0]
        span = (grid[:, -1] - grid[:, 0]) / (Z_GRID[-1] - Z_GRID[0])
        lo = (grid[:, _TAIL] - grid[:, 0]) / dz
        hi = (grid[:, -1] - grid[:, -1 - _TAIL]) / dz
        self.slope_lo = np.where(lo > 0, lo, span)
        self.slope_hi = np.where(hi > 0, hi, span)
        #: Features that can be scored: enough values and not constant.
        self.usable = (self.n >= 2) & (span > 0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Normal scores of ``x`` (shape ``(..., F)``); NaN stays NaN."""
        x = np.asarray(x, dtype=float)
        g = self.grid
        q = Z_GRID.size
        feat = np.arange(g.shape[0])
        if x.ndim == 2 and len(x) >= 32 and len(feat):  # batch: one binary search per feature
            xt = np.ascontiguousarray(x.T)
            lo = np.stack([np.searchsorted(g[f], xt[f], side="left") for f in feat], axis=1)
            hi = np.stack([np.searchsorted(g[f], xt[f], side="right") for f in feat], axis=1)
        else:  # a few events: compare with the whole grid
            lo = (g < x[..., None]).sum(-1)
            hi = (g <= x[..., None]).sum(-1)
        j = np.clip(lo, 1, q - 1)
        x0, x1 = g[feat, j - 1], g[feat, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            inner = Z_GRID[j - 1] + (x - x0) / (x1 - x0) * (Z_GRID[1] - Z_GRID[0])
            tie = 0.5 * (Z_GRID[np.clip(lo, 0, q - 1)] + Z_GRID[np.clip(hi - 1, 0, q - 1)])
            under = Z_GRID[0] - (g[:, 0] - x) / self.slope_lo
            over = Z_GRID[-1] + (x - g[:, -1]) / self.slope_hi
        z = np.where(hi > lo, tie, np.where(lo == 0, under, np.where(lo == q, over, inner)))
        z = np.where(self.usable, z, np.nan)
        return np.clip(np.where(np.isnan(x), np.nan, z), -Z_CLIP, Z_CLIP)

    def summary(self, f: int) -> dict[str, Any]:
        """JSON-able reference summary of feature ``f``."""
        med = float(self.quantiles[f, 2])
        iqr = float(self.quantiles[f, 3] - self.quantiles[f, 1])
        return {
            "n": int(self.n[f]),
            "mean": _num(self.mean[f]),
            "std": _num(self.std[f]),
            "median": _num(med),
            "robust_scale": _num(iqr / 1.3489795),
            "quantiles": {str(q): _num(v) for q, v in zip(EVIDENCE_Q, self.quantiles[f], strict=True)},
        }


def recent_summary(values: np.ndarray) -> dict[str, Any]:
    """JSON-able summary of recent raw values (NaN ignored)."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return {"n": 0}
    qs = np.quantile(v, EVIDENCE_Q)
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "quantiles": {str(q): float(x) for q, x in zip(EVIDENCE_Q, qs, strict=True)},
    }


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def _ndtr(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)
