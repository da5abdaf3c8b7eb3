"""Categorical drift: category shares of a sliding window against the reference."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from typing import Any

import numpy as np

from models.base import Detector, check_int
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget, check_budget, chi2_window_threshold

__all__ = ["CategoricalDrift"]

_OTHER = "__other__"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


class CategoricalDrift(Detector):
    """Shift in the shares of one categorical feature; unseen categories counted.

    The first ``warmup`` values give the reference shares.  Categories with at
    least 5 expected values per window (up to ``max_categories`` of them) get a
    bin of their own; the rest, and categories never seen in the warm-up,
    share an ``__other__`` bin.  Every ``stride`` values, a chi-squared test of
    homogeneity compares the last ``window`` values with the reference counts
    (a two-sample test: the reference's own sampling error is accounted for).
    Each test runs at level ``stride * budget.alpha``, so by the union bound the
    false alarms per value stay within the budget.  ``score`` is the last
    test's statistic over its critical value (fires at 1.0); after an alarm the
    window restarts.  ``None`` or NaN means missing: skipped.

    Parameters
    ----------
    warmup
        Values in the reference warm-up (at least ``window``).
    budget
        False alarms per million values.
    window
        Values per test (at least 20).
    stride
        Values between tests, in ``[1, window]``; None: ``window // 5``.
    max_categories
        Most categories with a bin of their own (at least 1).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> before = rng.choice(["a", "b", "c"], size=6000, p=[0.5, 0.3, 0.2])
    >>> after = rng.choice(["a", "b", "c", "d"], size=3000, p=[0.4, 0.3, 0.2, 0.1])
    >>> det = CategoricalDrift(warmup=2000, window=500)
    >>> fired = det.update_many(list(before) + list(after))
    >>> int(fired[0]), det.evidence()["unseen"]["count"] > 0
    (6099, True)
    """

    name = "categorical_drift"

    def __init__(
        self,
        warmup: int = 5000,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        window: int = 500,
        stride: int | None = None,
        max_categories: int = 50,
    ) -> None:
        check_int("window", window, 20)
        check_int("warmup", warmup, window, low_text=f"window ({window})")
        check_budget(budget)
        if not (stride is None or (isinstance(stride, int) and 1 <= stride <= window)):
            raise ValueError(f"stride must be None (window // 5) or an int in [1, window={window}], got {stride!r}")
        check_int("max_categories", max_categories, 1)
        self.warmup, self.budget, self.window, self.stride = warmup, budget, window, stride
        self._stride = stride if stride is not None else max(window // 5, 1)
        self.max_categories = max_categories
        self.relearn()

    # -- lifecycle ---------------------------------------------------------------
    def relearn(self) -> None:
        """Forget the reference and start a new warm-up."""
        self.phase = "learning"
        self._ref_counter: Counter[Hashable] = Counter()
        self._n_ref = 0
        self._fired = False
        self._score = 0.0
        self.n_events = 0
        self.alarms = 0
        self._unseen: Counter[Hashable] = Counter()
        self._last_alarm: dict[str, Any] | None = None

    def freeze(self) -> None:
        """End the warm-up now (needs at least one value)."""
        if self.phase == "learning" and self._n_ref:
            self._start()

    def learn_reference(self, values: Any) -> None:
        """Take the reference from a baseline sample and start monitoring."""
        self.relearn()
        self._ref_counter.update(v for v in values if not _missing(v))
        self._n_ref = sum(self._ref_counter.values())
        self._start()

    def reset(self) -> None:
        """Restart the window; keep the reference."""
        if self.phase == "monitoring":
            self._ring = np.zeros(0, dtype=np.int64)
            self._since_test = 0
        self._fired = False

    def _start(self) -> None:
        self.phase = "monitoring"
        top = self._ref_counter.most_common(self.max_categories)
        keep = [c for c, k in top if k * self.window / self._n_ref >= 5]
        self._index = {c: i for i, c in enumerate(keep)}
        other = self._n_ref - sum(self._ref_counter[c] for c in keep)
        self._labels = keep + [_OTHER]
        self._ref = np.array([self._ref_counter[c] for c in keep] + [other], dtype=float)
        dfs = range(len(self._labels) + 1)
        self._crit = np.array([chi2_window_threshold(max(d, 1), self._stride, self.budget.alpha) for d in dfs])
        self.reset()

    # -- learning ------------------------------------------------------------------
    def _learn_one(self, x: Any) -> None:
        self.update_many([x])

    def update_many(self, xs: Any) -> np.ndarray:
        xs = list(xs)
        fired: list[int] = []
        i = 0
        while i < len(xs) and self.phase == "learning":
            self._fired = False
            if not _missing(xs[i]):
                self.n_events += 1
                self._ref_counter[xs[i]] += 1
                self._n_ref += 1
                if self._n_ref >= self.warmup:
                    self._start()
            i += 1
        rows, codes = self._encode(xs, i)
        pos = 0
        while pos < len(codes):  # each pass ends at an alarm or at the end
            pos = self._scan(codes, rows, pos, fired)
        if i < len(xs):
            self._fired = bool(fired) and fired[-1] == len(xs) - 1
        return np.asarray(fired, dtype=np.int64)

    def _encode(self, xs: list[Any], start: int) -> tuple[list[int], np.ndarray]:
        rows, codes = [], []
        if self.phase != "monitoring":
            return rows, np.zeros(0, dtype=np.int64)
        other, index, ref = len(self._labels) - 1, self._index, self._ref_counter
        for j in range(start, len(xs)):
            x = xs[j]
            if _missing(x):
                continue
            c = index.get(x)
            if c is None:
                c = other
                if x not in ref:
                    self._unseen[x] += 1
            rows.append(j)
            codes.append(c)
        return rows, np.asarray(codes, dtype=np.int64)

    def _scan(self, codes: np.ndarray, rows: list[int], pos: int, fired: list[int]) -> int:
        """Test every ``stride`` values from ``codes[pos:]``; stop after an alarm."""
        seq = np.concatenate([self._ring, codes[pos:]])
        k = len(self._labels)
        cum = np.zeros((seq.size + 1, k), dtype=np.int64)
        np.cumsum(np.eye(k, dtype=np.int64)[seq], axis=0, out=cum[1:])
        first = self._stride - self._since_test  # new values until the next test
        ends = self._ring.size + np.arange(first, codes.size - pos + 1, self._stride)
        ends = ends[ends >= self.window]
        scores = self._chi2(cum[ends] - cum[ends - self.window]) if ends.size else np.zeros(0)
        hit = np.flatnonzero(scores >= 1.0)
        stop = int(ends[hit[0]]) if hit.size else seq.size
        if ends.size and (not hit.size or ends[0] <= stop):
            self._score = float(scores[hit[0]] if hit.size else scores[-1])
        used = stop - self._ring.size
        self.n_events += used
        self._since_test = (self._since_test + used) % self._stride
        if hit.size:
            self.alarms += 1
            row = rows[pos + used - 1]
            fired.append(row)
            counts = cum[stop] - cum[stop - self.window]
            self._record(counts, self._score)
            self._ring, self._since_test = np.zeros(0, dtype=np.int64), 0
        else:
            self._ring = seq[max(0, seq.size - self.window) :]
        return pos + used

    def _chi2(self, counts: np.ndarray) -> np.ndarray:
        c, r = counts.astype(float), self._ref[None, :]
        t = (c + r) / (self.window + self._n_ref)
        used = t > 0
        e_c, e_r = self.window * np.where(used, t, 1.0), self._n_ref * np.where(used, t, 1.0)
        x2 = np.where(used, (c - e_c) ** 2 / e_c + (r - e_r) ** 2 / e_r, 0.0).sum(1)
        return x2 / self._crit[used.sum(1) - 1]

    def _record(self, counts: np.ndarray, score: float) -> None:
        df = max(int(((counts + self._ref) > 0).sum()) - 1, 1)
        self._last_alarm = {
            "event": self.n_events - 1, "statistic": score * float(self._crit[df]), "threshold": float(self._crit[df]),
            "df": df, "reference_shares": self._shares(self._ref), "recent_shares": self._shares(counts),
        }

    def _shares(self, counts: np.ndarray) -> dict[str, float]:
        total = max(float(counts.sum()), 1.0)
        return {str(self._labels[i]): float(counts[i] / total) for i in np.argsort(-counts)[:10]}

    # -- results -------------------------------------------------------------------
    @property
    def score(self) -> float:
        return float(self._score)

    @property
    def threshold(self) -> float:
        return 1.0

    def evidence(self) -> dict[str, Any]:
        unseen = {"count": int(sum(self._unseen.values())), "top": [str(c) for c, _ in self._unseen.most_common(5)]}
        return {
            "score": self.score, "threshold": self.threshold, "phase": self.phase, "events": self.n_events,
            "alarms": self.alarms, "last_alarm": self._last_alarm, "unseen": unseen,
        }
