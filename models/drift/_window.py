"""Sliding-window chi-squared tests against reference bins, vectorised over features.

All features share one ring of the last ``max(windows)`` events' bin indices
(bin ``B`` marks a missing value).  For a window of ``w`` events, every
``w // 5`` events, each feature's counts ``c`` over its ``n`` present values
in the window are compared with the reference bin probabilities ``p`` (from
``n_ref`` reference values) by the Cressie-Read statistic (``lambda = 2/3``)
``2 / (lambda (lambda + 1)) sum c ((c / n p)^lambda - 1) / (1 + n / n_ref)``,
chi-squared with ``B - 1`` degrees of freedom without change (the factor is
the two-sample variance: the reference is itself a sample).  Each test runs at
level ``stride * rate``, so by the union bound the false alarms per event stay
at ``rate`` however much consecutive windows overlap.  A feature is tested once
its window holds at least ``w / 2`` present values and ``w`` events have passed
since its last restart.

Counts are integers brought up to date only when a test is due (adding the
events that entered the window, removing those that left, by ``bincount``), so
one event costs next to nothing between tests, and batches and single events
give identical counts.  Use: ``begin(bins)`` for a batch, ``advance()`` per
event (returns True if a test fired), ``end()`` after the batch.
"""

from __future__ import annotations

import numpy as np

from models.calibration import chi2_window_threshold

__all__ = ["SlidingChi2"]

#: Cressie-Read power-divergence exponent: its far tail (levels near 1e-6, 25
#: expected per bin) follows chi-squared within ~25 %; Pearson's runs ~60 % over.
_LAMBDA = 2.0 / 3.0
_CR = 2.0 / (_LAMBDA * (_LAMBDA + 1.0))
#: Spare rows after the history for small batches (bigger ones are copied).
_SPARE = 256


class SlidingChi2:
    """Sliding chi-squared tests of ``F`` features' bin indices at several window lengths."""

    def __init__(self, p_ref: np.ndarray, n_ref: np.ndarray, windows: tuple[int, ...], rate: float) -> None:
        n_features, n_bins = p_ref.shape
        self.windows = windows
        self.strides = [max(w // 5, 1) for w in windows]
        self.p_ref, self.n_ref, self.n_bins = p_ref, np.maximum(n_ref, 1.0), n_bins
        self.crit = np.array([chi2_window_threshold(n_bins - 1, s, rate) for s in self.strides])
        self._size = n_bins + 1
        self._offset = np.arange(n_features) * self._size
        # Flat indices (feature * (B + 1) + bin) of past events, oldest first, in a
        # buffer with room for small batches: rows [used - h, used) are the last h events.
        self._h = max(windows)
        self._buf = np.tile((self._offset + n_bins).astype(np.int32), (self._h + _SPARE, 1))
        self._used = self._h
        self.counts = np.zeros((len(windows), n_features * self._size), dtype=np.int64)
        self.synced = [0] * len(windows)  # event count the counts of each window reflect
        self.t = 0
        self.restart = np.zeros(n_features, dtype=np.int64)
        self.ratio = np.zeros((n_features, len(windows)))
        self._seq = self._buf[: self._h]
        self._t0 = 0
        self._copied = False

    def begin(self, bins: np.ndarray) -> None:
        """Start a batch of events with bins ``(T, F)`` (``B`` = missing)."""
        h, n = self._h, len(bins)
        if self._used + n > len(self._buf):
            self._buf[:h] = self._buf[self._used - h : self._used]
            self._used = h
        idx = self._offset + bins
        self._copied = h + n > len(self._buf)
        if self._copied:  # a large batch: work on a copy
            self._seq = np.concatenate([self._buf[:h], idx.astype(np.int32)])
        else:
            self._buf[self._used : self._used + n] = idx
            self._seq = self._buf[self._used - h : self._used + n]
        self._t0 = self.t

    def advance(self) -> bool:
        """Move to the next event of the batch; True if a test fired on it."""
        self.t += 1
        fired = False
        for i, (w, s) in enumerate(zip(self.windows, self.strides, strict=True)):
            if self.t % s == 0 and self.t >= w:
                fired = self._test(i, w) or fired
        return fired

    def end(self) -> None:
        """Finish the batch (every event advanced): bring the counts up to date."""
        for i, w in enumerate(self.windows):
            self._sync(i, w)
        n = self.t - self._t0
        if self._copied:
            self._buf[: self._h] = self._seq[n : n + self._h]
            self._used = self._h
        else:
            self._used += n
        self._seq = self._buf[self._used - self._h : self._used]

    def _sync(self, i: int, w: int) -> None:
        """Counts of window ``i`` for the events ``(t - w, t]``."""
        h, size = self._h, self.counts.shape[1]
        lo, hi = self.synced[i] - self._t0 + h, self.t - self._t0 + h  # rows of _seq entering
        if hi > lo:
            self.counts[i] += np.bincount(self._seq[lo:hi].ravel(), minlength=size)
            self.counts[i] -= np.bincount(self._seq[lo - w : hi - w].ravel(), minlength=size)
        self.synced[i] = self.t

    def _test(self, i: int, w: int) -> bool:
        self._sync(i, w)
        c = self.counts[i].reshape(-1, self._size)[:, : self.n_bins]
        n = c.sum(1)
        due = np.flatnonzero((n >= w // 2) & (self.t - self.restart >= w))
        if not due.size:
            return False
        nd = n[due, None].astype(float)
        e = nd * self.p_ref[due]
        o = c[due]
        x2 = _CR * (o * ((o / e) ** _LAMBDA - 1.0)).sum(1) / (1.0 + nd[:, 0] / self.n_ref[due])
        self.ratio[due, i] = x2 / self.crit[i]
        return bool((self.ratio[due, i] >= 1.0).any())

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_seq"]  # a view of _buf between batches
        state["_buf"] = self._buf[: self._used]  # the spare rows hold nothing
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._buf = np.concatenate([self._buf[-self._h :], np.empty((_SPARE, self._buf.shape[1]), np.int32)])
        self._used = self._h
        self._seq = self._buf[: self._h]

    def statistic(self) -> np.ndarray:
        """Last test's statistic per feature and window, ``(F, len(windows))``."""
        return self.ratio * self.crit

    def clear(self, rows: np.ndarray | slice = slice(None)) -> None:
        """Restart the given features: they are tested again once a full window has passed."""
        self.restart[rows] = self.t
        self.ratio[rows] = 0.0
