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

Counts are integers, taken at each test from the ring of past bin indices
(see ``due``), so batches and single events give identical counts and
statistics.  Use: ``begin(bins)`` for a batch
of ``T`` events, ``due(T)`` to plan its tests (returns the events that have
one), then ``at(e)`` for the events ``e`` that matter, in order (every event
``due`` returned and any other where the caller needs the window state, e.g.
to ``clear``), returning True if a test fired there; ``end(T)`` after the batch.
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
        self.set_rate(rate)
        self._size = n_bins + 1
        self._offset = np.arange(n_features) * self._size
        # Flat indices (feature * (B + 1) + bin) of past events, oldest first, in a
        # buffer with room for small batches: rows [used - h, used) are the last h events.
        self._h = max(windows)
        self._buf = np.tile((self._offset + n_bins).astype(np.int32), (self._h + _SPARE, 1))
        self._used = self._h
        self.t = 0
        self.restart = np.zeros(n_features, dtype=np.int64)
        self.ratio = np.zeros((n_features, len(windows)))
        self._seq = self._buf[: self._h]
        self._t0 = 0
        self._copied = False

    def set_rate(self, rate: float) -> None:
        """Each window's critical value for a false-alarm ``rate`` per event (the windows' counts stay)."""
        self.crit = np.array([chi2_window_threshold(self.n_bins - 1, s, rate) for s in self.strides])

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

    def due(self, n: int) -> np.ndarray:
        """Plan the tests of the next ``n`` events; returns the events (0-based) that have one.

        Window counts at every test are differences of one cumulative histogram of the
        ring (``bincount`` labelled by segment), and the statistics of every feature with
        enough present values come from one vectorised pass (the same arithmetic per
        feature as a test on its own); which features are due, which depends on
        restarts, is decided in ``at``.
        """
        self._plan: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        h, size, n_bins = self._h, self._offset.size * self._size, self.n_bins
        t = self._t0 + 1 + np.arange(n)
        tests = []
        for i, (w, s) in enumerate(zip(self.windows, self.strides, strict=True)):
            ts = t[(t % s == 0) & (t >= w)]
            if ts.size:
                tests.append((i, ts))
        if not tests:
            return np.zeros(0, dtype=np.int64)
        # row r of _seq holds event t0 - h + r + 1: events up to t are the rows before t - t0 + h
        ends = [ts - self._t0 + h for _, ts in tests]
        starts = [e - self.windows[i] for (i, _), e in zip(tests, ends, strict=True)]
        bounds = np.unique(np.concatenate(ends + starts))
        label = np.repeat(np.arange(1, bounds.size) * size, np.diff(bounds))[:, None]
        hist = np.bincount((label + self._seq[bounds[0] : bounds[-1]]).ravel(), minlength=bounds.size * size)
        cum = np.cumsum(hist.reshape(bounds.size, size), axis=0)  # rows [bounds[0], bounds[k])
        for (i, ts), e in zip(tests, ends, strict=True):
            w, m = self.windows[i], ts.size
            counts = cum[np.searchsorted(bounds, e)] - cum[np.searchsorted(bounds, e - w)]
            c = counts.reshape(m, -1, n_bins + 1)[..., :n_bins]
            k, f = np.nonzero(c.sum(-1) >= w // 2)
            nd = c[k, f].sum(1)[:, None].astype(float)
            ex = nd * self.p_ref[f]
            o = c[k, f]
            x2 = _CR * (o * ((o / ex) ** _LAMBDA - 1.0)).sum(1) / (1.0 + nd[:, 0] / self.n_ref[f])
            ratio = x2 / self.crit[i]
            cut = np.searchsorted(k, np.arange(m + 1))
            for j in range(m):
                plan = self._plan.setdefault(int(ts[j] - self._t0 - 1), [])
                plan.append((i, f[cut[j] : cut[j + 1]], ratio[cut[j] : cut[j + 1]]))
        return np.array(sorted(self._plan), dtype=np.int64)

    def at(self, e: int) -> bool:
        """Move to just after event ``e`` of the batch; True if a test fired there."""
        self.t = self._t0 + e + 1
        fired = False
        for i, f, ratio in self._plan.get(e, ()):
            due = self.t - self.restart[f] >= self.windows[i]
            self.ratio[f[due], i] = ratio[due]
            fired = bool((ratio[due] >= 1.0).any()) or fired
        return fired

    def end(self, n: int) -> None:
        """Finish the batch of ``n`` events."""
        self.t = self._t0 + n
        self._plan = {}
        if self._copied:
            self._buf[: self._h] = self._seq[n : n + self._h]
            self._used = self._h
        else:
            self._used += n
        self._seq = self._buf[self._used - self._h : self._used]

    def __getstate__(self) -> dict:
        """The last ``max(windows)`` events' bins, one byte each (``n_bins <= 100``), not the flat indices."""
        state = self.__dict__.copy()
        del state["_seq"]  # a view of _buf between batches
        state.pop("_plan", None)  # only used within a batch
        del state["_buf"]  # the spare rows hold nothing, and older rows are never read again
        state["_bins"] = (self._buf[self._used - self._h : self._used] - self._offset).astype(np.uint8)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        bins = state.pop("_bins", None)
        self.__dict__.update(state)
        # A snapshot from before the bins were packed holds the flat indices in _buf.
        last = self._buf[-self._h :] if bins is None else (self._offset + bins).astype(np.int32)
        self._buf = np.concatenate([last, np.empty((_SPARE, last.shape[1]), np.int32)])
        self._used = self._h
        self._seq = self._buf[: self._h]

    def statistic(self) -> np.ndarray:
        """Last test's statistic per feature and window, ``(F, len(windows))``."""
        return self.ratio * self.crit

    def clear(self, rows: np.ndarray | slice = slice(None)) -> None:
        """Restart the given features: they are tested again once a full window has passed."""
        self.restart[rows] = self.t
        self.ratio[rows] = 0.0
