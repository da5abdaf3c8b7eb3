"""One-sided CUSUMs computed a whole batch at a time, exactly as one event at a time.

``S = max(0, S + inc)`` has the closed form ``S_v = D_v - min(D_u - S_u,
min_{u < j <= v} D_j)`` over the cumulative increments ``D`` since any earlier
index ``u``.  Increments are rounded to multiples of ``2**-30`` (:func:`quantize`)
and kept within ``+-2**12``, so every sum below is exact in float64 for
batches of up to ``MAX_BATCH`` events: the batch form, the event-by-event
recursion and any split of the stream into batches give bit-identical statistics.

:class:`CusumPath` holds the statistics of ``R`` rows (features) x ``C`` columns
over one batch and each row's first alarm; ``restart`` recomputes rows from a
given event on.  :class:`CusumBank` is the bank of columns ``(stat, sign, k)``
used by the numeric detectors: column ``c`` adds ``sign * y[stat] - k`` per
present value (``y`` is N(0, 1) without change) and 0 per missing one.
"""

from __future__ import annotations

import numpy as np

from models.calibration import gaussian_cusum_threshold
from models.drift._reference import floor_2sig

__all__ = ["BLOCK", "MAX_BATCH", "CusumBank", "CusumPath", "blocked", "quantize"]

_SCALE = 2.0**30
#: Largest increment magnitude kept (in sd); beyond it one event crosses any threshold.
_LIMIT = 2.0**12
#: Most events per batch for which the sums stay exact (``_LIMIT * MAX_BATCH <= 2**22``).
MAX_BATCH = 1024
#: Events per block of :class:`CusumPath`.
BLOCK = 16


def quantize(a: np.ndarray | float) -> np.ndarray:
    """``a`` clipped to ``+-2**12`` and rounded to a multiple of ``2**-30`` (NaN -> NaN)."""
    q = np.multiply(a, _SCALE)
    np.minimum(q, _LIMIT * _SCALE, out=q)
    np.maximum(q, -_LIMIT * _SCALE, out=q)
    np.rint(q, out=q)
    q /= _SCALE
    return q


def blocked(series: np.ndarray) -> np.ndarray:
    """Rows of ``series`` ``(R, T)`` as ``(BLOCK, R, nb)``: ``[j, r, b] = series[r, b * BLOCK + j]``.

    The last block is padded with the last value (a cumulative series stays flat).
    """
    rows, n = series.shape
    nb = max(1, -(-n // BLOCK))
    if nb * BLOCK > n:
        series = np.concatenate([series, np.repeat(series[:, -1:], nb * BLOCK - n, axis=1)], axis=1)
    return np.ascontiguousarray(series.reshape(rows, nb, BLOCK).transpose(2, 0, 1))


def blocked_cumsum(values: np.ndarray) -> np.ndarray:
    """Cumulative sums along events of ``(T, R)`` values, in :func:`blocked` layout.

    Zero-padded; exact only for values whose partial sums are exact (quantised ones).
    """
    n, rows = values.shape
    nb = max(1, -(-n // BLOCK))
    if nb * BLOCK > n:
        values = np.concatenate([values, np.zeros((nb * BLOCK - n, rows))])
    out = np.ascontiguousarray(values.reshape(nb, BLOCK, rows).transpose(1, 2, 0), dtype=float)
    for j in range(1, BLOCK):
        out[j] += out[j - 1]
    total = out[-1]
    out += (np.cumsum(total, axis=1) - total)[None]
    return out


class CusumPath:
    """CUSUM statistics of one batch for ``R`` rows x ``C`` columns, and each row's first alarm.

    Column ``c`` of ``columns = (stat, sign, k)`` has cumulative increments
    ``sign[c] * y[stat[c]] - k[c] * count`` after events ``1..T`` (``count`` None: no
    ``k`` term), all quantised and in :func:`blocked` layout ``(BLOCK, R, nb)``; ``s0`` ``(R, C)`` holds the quantised
    statistics before the batch, ``h`` ``(R, C)`` the thresholds.  Exact block minima give
    the statistic at every block boundary, and ``max(cum in block) - running min at its
    end`` bounds it inside the block; only blocks whose bound reaches ``h`` are walked
    event by event.  ``first[r]`` is the first event (0-based) at which a column of row
    ``r`` reaches its threshold, ``T`` if none.  Rows restarted mid-batch get a full
    path instead, and so do all rows of short batches (:meth:`walked`).
    """

    def __init__(
        self,
        y: np.ndarray,
        count: np.ndarray | None,
        columns: tuple[np.ndarray, np.ndarray, np.ndarray],
        n: int,
        s0: np.ndarray,
        h: np.ndarray,
    ) -> None:
        self.y, self.count, self.n, self.h = y, count, n, h
        self.stat, self.sign, self.k = columns
        n_cols, n_rows, nb = len(self.stat), y.shape[2], y.shape[3]
        self.first = np.full(n_rows, n, dtype=np.int64)
        self._restarted = np.zeros(n_rows, dtype=bool)
        self._path = np.empty((0,))
        self._series: np.ndarray | None = None
        bmin, bmax = np.empty((n_cols, n_rows, nb)), np.empty((n_cols, n_rows, nb))
        scratch = np.empty(y.shape[1:])
        kn = {} if count is None else {k: count * k for k in set(self.k.tolist())}
        for c in range(n_cols):
            d = self.y[self.stat[c]]
            if count is not None:  # sign * y - k * count, negated for sign < 0
                d = (np.subtract if self.sign[c] > 0 else np.add)(d, kn[self.k[c]], out=scratch)
            lo, hi = (bmin[c], bmax[c]) if self.sign[c] > 0 else (bmax[c], bmin[c])
            d.min(axis=0, out=lo)
            d.max(axis=0, out=hi)
            if self.sign[c] < 0:
                np.negative(bmin[c], out=bmin[c])
                np.negative(bmax[c], out=bmax[c])
        low = -s0.T[..., None]  # the statistic is cum - min(-s0, cum so far)
        m_end = np.minimum.accumulate(bmin, axis=-1)
        np.minimum(m_end, low, out=m_end)
        self._m_start = np.concatenate([low, m_end[..., :-1]], axis=-1)
        ht = h.T
        c, r, b = np.nonzero(bmax - m_end >= ht[..., None])
        if r.size:
            j = np.arange(BLOCK)
            vals = self._cum(c[:, None], j, r[:, None], b[:, None])
            low_in = np.minimum(np.minimum.accumulate(vals, axis=1), self._m_start[c, r, b][:, None])
            cross = vals - low_in >= ht[c, r][:, None]
            has = cross.any(axis=1)
            np.minimum.at(self.first, r[has], b[has] * BLOCK + cross[has].argmax(axis=1))

    @classmethod
    def walked(cls, series: np.ndarray, s0: np.ndarray, h: np.ndarray) -> CusumPath:
        """Full paths from cumulative increments ``series`` ``(R, C, T)`` (for short batches)."""
        self = cls.__new__(cls)
        n_rows, n_cols, self.n = series.shape
        self.h, self._series = h, series
        self.first = np.full(n_rows, self.n, dtype=np.int64)
        self._restarted = np.ones(n_rows, dtype=bool)
        self._path = np.empty((n_rows, n_cols, self.n + 1))
        self._walk(np.arange(n_rows), 0, s0)
        return self

    def _cum(self, c: np.ndarray, j: np.ndarray | slice, r: np.ndarray | slice, b: np.ndarray | int) -> np.ndarray:
        """Cumulative increments at broadcast indices (column, in-block event, row, block)."""
        y = self.sign[c] * self.y[self.stat[c], j, r, b]
        return y if self.count is None else y - self.k[c] * self.count[j, r, b]

    def state(self, v: int) -> np.ndarray:
        """Statistics ``(R, C)`` after ``v`` events of the batch (``v`` not before a restart)."""
        if self._path.ndim == 3 and self._restarted.all():
            return self._path[:, :, v].copy()
        if v == 0:
            s = -self._m_start[..., 0].T
        else:
            b, j = divmod(v - 1, BLOCK)
            c = np.arange(len(self.stat))[:, None, None]
            cum = self._cum(c, np.arange(j + 1)[:, None], np.arange(self.y.shape[2]), b)  # (C, j + 1, R)
            s = (cum[:, -1] - np.minimum(self._m_start[..., b], cum.min(axis=1))).T
        s = np.ascontiguousarray(s)
        if self._path.size:
            s[self._restarted] = self._path[self._restarted, :, v]
        return s

    def restart(self, rows: np.ndarray, v: int) -> None:
        """Set ``rows`` to 0 after ``v >= 1`` events and walk them from there."""
        if not rows.size:
            return
        if not self._path.size:
            self._path = np.zeros((self._restarted.size, self.h.shape[1], self.n + 1))
        self._restarted[rows] = True
        self._walk(rows, v, np.zeros((rows.size, self.h.shape[1])))

    def _walk(self, rows: np.ndarray, v: int, s: np.ndarray) -> None:
        """Full paths of ``rows`` from statistics ``s`` after ``v`` events; their first alarms."""
        self._path[rows, :, v] = s
        self.first[rows] = self.n
        if v >= self.n:
            return
        if self._series is not None:
            series = self._series[rows]
        else:
            c = np.arange(len(self.stat))[:, None, None, None]
            cum = self._cum(c, np.arange(BLOCK)[:, None, None], rows[:, None], np.arange(self.y.shape[3]))
            series = cum.transpose(2, 0, 3, 1).reshape(rows.size, len(self.stat), -1)  # (rows, C, T')
        seg = series[..., v : self.n]  # cumulative increments after events v + 1..T
        low = np.minimum.accumulate(seg, axis=-1)
        start = series[..., v - 1 : v] if v else 0.0
        np.minimum(low, start - s[..., None], out=low)
        np.subtract(seg, low, out=low)
        self._path[rows, :, v + 1 :] = low
        hit = (low >= self.h[rows, :, None]).any(axis=1)
        self.first[rows] = np.where(hit.any(axis=1), v + hit.argmax(axis=1), self.n)

    def next_alarm(self, t: int) -> int:
        """First event at or after ``t`` at which some row alarms, ``T`` if none."""
        ahead = self.first[self.first >= t]
        return int(ahead.min()) if ahead.size else self.n


class CusumBank:
    """One-sided CUSUMs ``(stat, sign, k)`` for ``F`` features (``k`` is quantised)."""

    def __init__(
        self, columns: list[tuple[int, int, float]], rate: float, n_ref: np.ndarray, enabled: np.ndarray
    ) -> None:
        self.columns = columns
        self._stat = np.array([c[0] for c in columns])
        self._sign = np.array([c[1] for c in columns], dtype=float)
        self._k = np.array([c[2] for c in columns], dtype=float)
        n_features = len(n_ref)
        self.h = np.full((n_features, len(columns)), np.inf)
        self._set_h(np.flatnonzero(enabled), rate, n_ref)
        self.s = np.zeros_like(self.h)
        #: Features with finite thresholds; the others keep ``s == 0``.
        self.rows = np.flatnonzero(np.isfinite(self.h).all(axis=1))

    def set_rate(self, rate: float, n_ref: np.ndarray) -> None:
        """The enabled features' thresholds for another false-alarm ``rate`` (the statistics stay)."""
        self._set_h(self.rows, rate, n_ref)

    def _set_h(self, rows: np.ndarray, rate: float, n_ref: np.ndarray) -> None:
        for f in rows:
            n = floor_2sig(float(n_ref[f]))
            self.h[f] = [gaussian_cusum_threshold(float(k), rate, n) for k in self._k]

    def run(self, stats: list[np.ndarray], ok: np.ndarray) -> CusumPath:
        """Statistics of the enabled features over a batch: ``stats[i]`` ``(T, F)``, 0 where not ``ok``."""
        r, n = self.rows, len(ok)
        sel = slice(None) if r.size == ok.shape[1] else r
        k = quantize(self._k)
        if n <= BLOCK:  # short batch: (R, C, T) cumulative increments, walked in full
            y = np.stack([np.cumsum(quantize(st[:, sel]), axis=0) for st in stats])[self._stat]  # (C, T, R)
            y *= self._sign[:, None, None]
            y -= k[:, None, None] * np.cumsum(ok[:, sel], axis=0)
            return CusumPath.walked(y.transpose(2, 0, 1), quantize(self.s[r]), self.h[r])
        y = np.stack([blocked_cumsum(quantize(st[:, sel])) for st in stats])
        count = blocked_cumsum(ok[:, sel])
        columns = (self._stat, self._sign, k)
        return CusumPath(y, count, columns, n, quantize(self.s[r]), self.h[r])

    def at(self, path: CusumPath, v: int) -> np.ndarray:
        """All statistics ``(F, C)`` after ``v`` events of the batch on ``path``."""
        s = self.s.copy()
        s[self.rows] = path.state(v)
        return s

    def finish(self, path: CusumPath) -> None:
        """Take the statistics at the end of the batch."""
        self.s[self.rows] = path.state(path.n)

    def ratios(self) -> np.ndarray:
        """Statistic over threshold, ``(F, C)`` (0 where disabled)."""
        return np.where(np.isinf(self.h), 0.0, self.s / self.h)

    def clear(self, rows: np.ndarray | slice = slice(None)) -> None:
        self.s[rows] = 0.0

    def labels(self, names: list[str]) -> list[str]:
        side = {1: "up", -1: "down"}
        return [f"{names[i]}_{side[s]}(k={k:g})" for i, s, k in self.columns]
