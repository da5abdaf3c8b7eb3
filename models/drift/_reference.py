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

__all__ = ["GridRanks", "MIN_SD", "NormalScores", "Z_CLIP", "floor_2sig", "recent_summary"]

#: Normal-score points at which reference quantiles are kept.
Z_GRID = np.linspace(-2.5, 2.5, 41)
#: Normal scores are clipped here; in-control mass beyond is 6e-5.
Z_CLIP = 4.0
#: Quantile levels reported in evidence.
EVIDENCE_Q = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Smallest standard deviation a score is divided by when it is standardised.  The
#: warm-up's own scores of a continuous feature have a standard deviation within a
#: few per cent of 1; far below it the feature's values tie (one value most of the
#: time, many zeros) and share one score, and scaling up to unit variance would
#: give its other values far heavier tails than the Gaussian calibration assumes
#: (hundreds of false alarms per million at a budget of 100).
MIN_SD = 0.9
_TAIL = 8  # tail slope measured over the 8 outer grid steps (1 sd of z)
_BUCKETS = 4096  # per-feature rank lookup buckets over the grid's range


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
        """Normal scores of ``x`` (shape ``(..., F)``); NaN stays NaN.

        Grid positions come from :class:`GridRanks`; the result is the same as
        binary searches in the grid.
        """
        x = np.asarray(x, dtype=float)
        ranks, look = self._lookup()
        q = Z_GRID.size
        lo, hi = ranks.ranks(x)
        j = np.clip(lo, 1, q - 1)
        j += look.base  # flat index of (feature, j)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            z = look.z_left.take(j)
            z += (x - look.x_left.take(j)) / look.width.take(j) * (Z_GRID[1] - Z_GRID[0])
            # outside the grid: extrapolate; on tied grid values: middle of their scores
            for at, side in ((np.flatnonzero(lo == 0), 0), (np.flatnonzero(lo == q), 1)):
                if at.size:
                    f = at % x.shape[-1]
                    xv = x.reshape(-1)[at]
                    if side == 0:
                        z.reshape(-1)[at] = Z_GRID[0] - (self.grid[f, 0] - xv) / self.slope_lo[f]
                    else:
                        z.reshape(-1)[at] = Z_GRID[-1] + (xv - self.grid[f, -1]) / self.slope_hi[f]
            tie = np.flatnonzero(hi > lo)
            if tie.size:
                lt, ht = lo.reshape(-1)[tie], hi.reshape(-1)[tie]
                z.reshape(-1)[tie] = 0.5 * (Z_GRID[np.clip(lt, 0, q - 1)] + Z_GRID[np.clip(ht - 1, 0, q - 1)])
        z[np.isnan(x)] = np.nan
        z[..., ~self.usable] = np.nan
        return np.clip(z, -Z_CLIP, Z_CLIP, out=z)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_look", None)  # a cache, rebuilt on first use: keeps snapshots small
        return state

    def _lookup(self) -> tuple[GridRanks, _Interp]:
        look = getattr(self, "_look", None)
        if look is None:  # built on first use, also after a restore
            g = np.where(self.usable[:, None], self.grid, 0.0)  # unusable features give NaN anyway
            look = self._look = (GridRanks(g), _Interp(g))
        return look

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


class GridRanks:
    """Exact ranks of values in each feature's sorted grid ``(F, q)``, through a bucket table.

    ``b(x) = int(clip((x - g0) * scale + 1, 0, B + 1))`` is non-decreasing in
    ``x`` (each floating-point step is monotone), so grid values in a lower
    bucket than ``x`` are below it and those in a higher one above it; only
    values sharing a bucket with a grid value (about 1 %) are compared with
    the grid.  Ranks: ``lo = #{g < x}``, ``hi = #{g <= x}`` (NaN: any rank),
    the same as ``searchsorted`` left and right.
    """

    def __init__(self, grid: np.ndarray) -> None:
        n_features, q = grid.shape
        self.grid = grid
        self.g0 = grid[:, 0].copy()
        span = grid[:, -1] - grid[:, 0]
        self.scale = np.where(span > 0, _BUCKETS / np.where(span > 0, span, 1.0), 0.0)
        gb = self._buckets(grid.T).T  # (F, q)
        size = _BUCKETS + 2
        below = np.zeros((n_features, size), dtype=np.int64)
        shared = np.zeros((n_features, size), dtype=bool)
        for f in range(n_features):
            below[f] = np.searchsorted(gb[f], np.arange(size), side="left")
            shared[f, gb[f]] = True
        #: ``2 * #(grid in lower buckets) + (bucket holds a grid value)``, per (feature, bucket).
        self.code = (2 * below + shared).astype(np.uint16).reshape(-1)
        self.offset = np.arange(n_features) * size

    def _buckets(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            d = (x - self.g0) * self.scale
            d += 1.0
            np.fmin(d, _BUCKETS + 1.0, out=d)
            np.fmax(d, 0.0, out=d)
        return d.astype(np.intp)

    def ranks(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` ranks of ``x`` ``(..., F)`` in the grid of its feature."""
        if x.size <= 4 * x.shape[-1]:  # a few events: compare with the whole grid
            return (self.grid < x[..., None]).sum(-1), (self.grid <= x[..., None]).sum(-1)
        code = self.code.take(self._buckets(x) + self.offset)
        lo = (code >> 1).astype(np.intp)
        hi = lo.copy()
        near = np.flatnonzero(code & 1)
        if near.size:
            f = near % x.shape[-1]
            xv = x.reshape(-1)[near, None]
            g = self.grid[f]
            lo.reshape(-1)[near] = (g < xv).sum(1)
            hi.reshape(-1)[near] = (g <= xv).sum(1)
        return lo, hi


class _Interp:
    """Flat tables for interpolation in grid cell ``j`` (index ``feature * q + j``, ``1 <= j < q``)."""

    def __init__(self, grid: np.ndarray) -> None:
        n_features, q = grid.shape
        self.base = np.arange(n_features) * q
        self.x_left = np.concatenate([grid[:, :1], grid[:, :-1]], axis=1).reshape(-1)  # grid[j - 1]
        self.width = np.concatenate([grid[:, 1:2] - grid[:, :1], grid[:, 1:] - grid[:, :-1]], axis=1).reshape(-1)
        self.z_left = np.tile(np.concatenate([Z_GRID[:1], Z_GRID[:-1]]), n_features)  # Z_GRID[j - 1]


def recent_summary(values: np.ndarray) -> dict[str, Any]:
    """JSON-able summary of recent raw values (NaN ignored), computed in double precision."""
    v = values[~np.isnan(values)].astype(float)
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
