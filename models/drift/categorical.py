"""Categorical drift: category counts in sliding windows of several lengths against exact limits, and share CUSUMs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from typing import Any

import numpy as np

from models.base import Detector, check_int
from models.calibration import DEFAULT_BUDGET, SAFETY, FalseAlarmBudget, check_budget
from models.drift._category_limits import DEFAULT_WINDOWS, binomial_critical, count_limits, own_bins, tested_bins, windows_for
from models.drift._share_rises import share_budget, share_cusums, share_rises
from models.drift.missing_rate import MissingRate

__all__ = ["DEFAULT_WINDOWS", "CategoricalDrift", "windows_for"]  # the window lengths re-exported

_OTHER = "__other__"
#: Label of the values whose category the reference never saw (pooled with ``__other__`` in the count tests).
_UNSEEN = "__unseen__"
#: Share of each window's budget for its test of unseen categories (its critical count barely moves with the level).
_UNSEEN_SHARE = 0.1


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


class CategoricalDrift(Detector):
    """Shift in the shares of one categorical feature; unseen categories counted.

    The first ``warmup`` values give the reference shares.  Two kinds of test
    share the budget, half each:

    * **Windows**, one per length in ``windows``: every ``stride`` values
      (``w // 5`` by default) the count of each bin in the last ``w`` values is
      compared with its beta-binomial law under no change (the window's values
      exchangeable with the reference's, whose share is itself estimated): a
      count below or above the limits that law gives at the test's level is a
      change.  Exact for any expected count, so a rare class (1 % of
      predictions) is tested as honestly as a frequent one; the Pearson
      chi-squared window this replaced overshot its level many times there (6.7
      false alarms per million values on a 99 / 1 binary stream at a budget of
      1).  Categories that expect at least 5 values in a window (up to
      ``max_categories``) get a bin of their own in its test; the rest, and
      categories never seen in the warm-up, share an ``__other__`` bin.  Values
      of categories the reference never saw are also counted on their own: more
      of them in a window than a binomial with the Good-Turing chance of a new
      category (singletons in the reference over its size) allows is a change
      too (a new category that takes a share is seen within tens of values).
      A window's tests share level ``stride * SAFETY * budget.alpha / (2
      len(windows))`` (a tenth for the unseen count, the rest split over the
      bins it tests and both sides: not the rest where the reference had none
      of it, and one of two bins, the other being the window minus it): by the
      union bound the false alarms per value stay within their half.
    * **Share rises**: a Bernoulli CUSUM on each kept category's indicator and
      on the rest's (:class:`~models.drift.missing_rate.MissingRate` on one
      column per category), for a rise of that share; whenever shares move,
      some share rises.  Each watched one (a share of at most 90 %) holds its
      part of the other half.

    Mean delays with 5 categories, a share moving from the commonest to the
    rarest, against the Pearson window of 500 this replaced: a tenth of the
    values 264 against 334 (300 streams), a fifth 97 against 190, a twentieth
    944 against 956 (100 streams; that one missed once).  A rare class rising
    from 1 % to 3 % takes 1,043 values (median of 40) against 500, which that
    window reached only by overspending its budget (the CUSUM that knows both
    rates needs 887, median of 100).  ``score`` is the largest of the windows' last test scores (a bin's
    count beyond its expectation over the distance to its limit) and the
    CUSUMs' statistics over their thresholds; it fires at 1.0.  After a window
    alarm every window restarts (and is tested again once it is full), after a
    CUSUM alarm that CUSUM.  ``None`` or NaN means missing: skipped.

    Parameters
    ----------
    warmup
        Values in the reference warm-up (at least the longest window).
    budget
        False alarms per million values.
    windows
        Values per test, one test per window length (each at least 20).
    stride
        Values between tests of every window, at most the shortest window; None: ``w // 5`` for window ``w``.
    max_categories
        Most categories with a bin of their own (at least 1).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> before = rng.choice(["a", "b", "c"], size=6000, p=[0.5, 0.3, 0.2])
    >>> after = rng.choice(["a", "b", "c", "d"], size=3000, p=[0.4, 0.3, 0.2, 0.1])
    >>> det = CategoricalDrift(warmup=2000)
    >>> int(det.update_many(list(before) + list(after))[0])
    6059
    >>> det.evidence()["unseen"]["top"]
    ['d']
    >>> int(CategoricalDrift(warmup=2000, windows=(500,)).update_many(list(before) + list(after))[0])
    6072
    """

    name = "categorical_drift"

    def __init__(
        self,
        warmup: int = 5000,
        budget: FalseAlarmBudget = DEFAULT_BUDGET,
        windows: tuple[int, ...] = DEFAULT_WINDOWS,
        stride: int | None = None,
        max_categories: int = 50,
    ) -> None:
        if not (isinstance(windows, tuple) and windows and all(isinstance(w, int) and not isinstance(w, bool) and w >= 20 for w in windows)):
            raise ValueError(f"windows must be a non-empty tuple of ints >= 20, got {windows!r}")
        windows = tuple(sorted(set(windows)))
        check_int("warmup", warmup, windows[-1], low_text=f"the longest window ({windows[-1]})")
        check_budget(budget)
        if not (stride is None or (isinstance(stride, int) and not isinstance(stride, bool) and 1 <= stride <= windows[0])):
            raise ValueError(f"stride must be None (w // 5 per window) or an int in [1, shortest window={windows[0]}], got {stride!r}")
        check_int("max_categories", max_categories, 1)
        self.warmup, self.budget, self.windows, self.stride = warmup, budget, windows, stride
        self._strides = [stride if stride is not None else max(w // 5, 1) for w in windows]
        self.max_categories = max_categories
        self.relearn()

    def __getstate__(self) -> dict[str, Any]:
        """The ring of recent codes in the smallest integer type that holds them (it is up to the longest window)."""
        state = self.__dict__.copy()
        if "_ring" in state:
            state["_ring"] = self._ring.astype(np.min_scalar_type(len(self._labels)))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore.  A snapshot from before the windows were several had one ``window`` and Pearson's
        statistic: it keeps its reference, window and recent values, and takes this version's bins and
        thresholds."""
        state = dict(state)
        if "_ring" in state:
            state["_ring"] = np.asarray(state["_ring"], dtype=np.int64)
        if "windows" in state:
            self.__dict__.update(state)
            if "_tested" not in state or "_rises" not in state:  # from before the share CUSUMs or the tested bins
                self._rises = None
                if self.phase == "monitoring":
                    self._limits_from_reference(self._labels[:-2])
            return
        w, stride = state.pop("window"), state.pop("_stride")
        state["windows"], state["_strides"] = (w,), [stride]
        if state["phase"] != "monitoring":
            self.__dict__.update(state, _rises=None)
            return
        ring, since, old_labels = state.pop("_ring"), state.pop("_since_test"), state.pop("_labels")
        for key in ("_ref", "_crit", "_index"):
            state.pop(key)
        self.__dict__.update(state)
        self._start()  # bins and thresholds from the reference counts; empties the windows
        other = len(self._index)  # the old __other__ held unseen categories too: they count as seen ones
        recode = np.array([self._index.get(c, other) for c in old_labels], dtype=np.int64)
        self._ring, self._count = recode[ring], ring.size + (since - ring.size) % stride  # values since the restart
        self._fired, self._last[0] = state["_fired"], state["_score"]

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
        self._rises: MissingRate | None = None

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
        """Restart the windows; keep the reference."""
        if self.phase == "monitoring":
            self._ring = np.zeros(0, dtype=np.int64)
            self._count = 0  # values since the restart
            if self._rises is not None:
                self._rises.reset()
        self._fired = False

    def _start(self) -> None:
        """Codes: one per category that has a bin of its own in the longest window (most frequent
        first), then ``__other__`` (the other categories the reference saw) and ``__unseen__``; window
        ``i`` keeps the first ``_own[i]`` of them and pools the rest."""
        self.phase = "monitoring"
        top = self._ref_counter.most_common(self.max_categories)
        self._own = [own_bins([k for _, k in top], self._n_ref, w) for w in self.windows]
        keep = [c for c, _ in top[: max(self._own)]]
        self._index = {c: i for i, c in enumerate(keep)}
        self._labels = keep + [_OTHER, _UNSEEN]
        # Good-Turing: the chance that a value's category is one the reference never saw.
        singletons = sum(1 for k in self._ref_counter.values() if k == 1)
        self._q_unseen = (singletons + 1) / (self._n_ref + 1)
        self._limits_from_reference(keep)
        self._last = np.zeros(len(self.windows))
        self.reset()

    def _limits_from_reference(self, keep: list[Hashable]) -> None:
        """The share CUSUMs, and each window's bins, tested bins, count limits and unseen limit."""
        # Bernoulli CUSUMs for a rising share: whenever shares move, some share rises.
        self._rises = share_cusums(self._bin_counts(keep), tuple(str(c) for c in keep) + (_OTHER,), self.budget.per_million / 2)
        self._window_limits(keep)

    def _apply_budget(self) -> None:
        if self.phase != "monitoring":
            return  # while learning, _start reads the budget
        keep = self._labels[:-2]
        if self._rises is not None:
            self._rises.rebudget(share_budget(self._bin_counts(keep), self.budget.per_million / 2))
        self._window_limits(keep)

    def _window_limits(self, keep: list[Hashable]) -> None:
        """Each window's bins, tested bins, count limits and unseen limit."""
        # Half the budget for the windows (per window: its share tests and its unseen test), half for the CUSUMs.
        alpha = SAFETY * self.budget.alpha / len(self.windows) / (2 if self._rises is not None else 1)
        self._refs, self._tested, self._limits, self._unseen_crits = [], [], [], []
        for w, own, stride in zip(self.windows, self._own, self._strides):
            ref = self._bin_counts(keep[:own])
            tested = tested_bins(ref)
            level = stride * alpha * (1.0 - _UNSEEN_SHARE) / (2 * max(len(tested), 1))  # each tested bin, each side
            limits = np.array([count_limits(w, ref[j], self._n_ref, level) for j in tested], dtype=float).reshape(-1, 2).T
            self._tested.append(np.array(tested, dtype=np.int64))
            self._refs.append(np.array(ref, dtype=float))
            self._limits.append(limits)  # (2, tested): lowest and highest counts of those bins that are not surprising, exclusive
            self._unseen_crits.append(binomial_critical(w, self._q_unseen, stride * alpha * _UNSEEN_SHARE))

    def _bin_counts(self, categories: list[Hashable]) -> list[int]:
        """Reference counts of ``categories``, then of the rest."""
        counts = [self._ref_counter[c] for c in categories]
        return counts + [self._n_ref - sum(counts)]

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
        events = self.n_events
        pos = 0
        while pos < len(codes):  # each pass ends at an alarm or at the end
            pos = self._scan(codes, rows, pos, fired)
        if self._rises is not None and codes.size:
            hits, alarm = share_rises(self._rises, codes, events)
            rises = [rows[int(j)] for j in hits]
            if rises:
                extra = set(rises) - set(fired)
                self.alarms += len(extra)
                if rises[-1] >= max(fired, default=-1):  # the latest alarm is a rise
                    self._last_alarm = alarm
                fired = sorted(set(fired) | extra)
        if self._rises is not None and self.phase == "monitoring":
            self._score = max(float(self._last.max()), self._rises.score)
        if i < len(xs):
            self._fired = bool(fired) and fired[-1] == len(xs) - 1
        return np.asarray(fired, dtype=np.int64)

    def _encode(self, xs: list[Any], start: int) -> tuple[list[int], np.ndarray]:
        rows, codes = [], []
        if self.phase != "monitoring":
            return rows, np.zeros(0, dtype=np.int64)
        other, index, ref = len(self._index), self._index, self._ref_counter
        for j in range(start, len(xs)):
            x = xs[j]
            if _missing(x):
                continue
            c = index.get(x)
            if c is None:
                c = other
                if x not in ref:
                    self._unseen[x] += 1
                    c = other + 1
            rows.append(j)
            codes.append(c)
        return rows, np.asarray(codes, dtype=np.int64)

    def _scan(self, codes: np.ndarray, rows: list[int], pos: int, fired: list[int]) -> int:
        """Run every window's tests due in ``codes[pos:]``; stop after an alarm."""
        seq = np.concatenate([self._ring, codes[pos:]])
        k, held, new = len(self._labels), self._ring.size, codes.size - pos
        plan = []  # ends in seq of each window's tests; the value count since the restart at end e is count + e - held
        for w, stride in zip(self.windows, self._strides):
            first = max(w, self._count + 1)
            first += -first % stride
            plan.append(held + np.arange(first - self._count, new + 1, stride))
        starts = [ends[0] - w for ends, w in zip(plan, self.windows) if ends.size]
        lo = min(starts, default=0)  # counts over seq[lo:]: cum[j] holds those of seq[lo:lo + j]
        cum = np.zeros((seq.size - lo + 1 if starts else 1, k), dtype=np.int64)
        if starts:
            np.cumsum(np.eye(k, dtype=np.int64)[seq[lo:]], axis=0, out=cum[1:])
        tests = [
            (ends, self._ratios(i, cum[ends - lo] - cum[ends - lo - w]) if ends.size else np.zeros(0))
            for i, (ends, w) in enumerate(zip(plan, self.windows))
        ]
        hits = [int(ends[np.argmax(r >= 1.0)]) for ends, r in tests if (r >= 1.0).any()]
        stop = min(hits) if hits else seq.size
        for i, (ends, r) in enumerate(tests):
            done = np.flatnonzero(ends <= stop)
            if done.size:
                self._last[i] = r[done[-1]]
        used = stop - held
        self.n_events += used
        self._count += used
        if hits:
            self.alarms += 1
            fired.append(rows[pos + used - 1])
            at = [(r[ends == stop][0], i) for i, (ends, r) in enumerate(tests) if (ends == stop).any()]
            ratio, i = max(at)
            self._record(i, cum[stop - lo] - cum[stop - lo - self.windows[i]], float(ratio))
            self._last[:] = 0.0
            self._last[i] = ratio
            self._ring, self._count = np.zeros(0, dtype=np.int64), 0
        else:
            self._ring = seq[max(0, seq.size - self.windows[-1]) :]
        self._score = float(self._last.max())
        return pos + used

    def _coarse(self, i: int, counts: np.ndarray) -> np.ndarray:
        """Counts ``(..., codes)`` in window ``i``'s bins: its own categories, then the rest pooled."""
        own = self._own[i]
        return np.concatenate([counts[..., :own], counts[..., own:].sum(-1, keepdims=True)], axis=-1)

    def _ratios(self, i: int, counts: np.ndarray) -> np.ndarray:
        """Window ``i``'s tests for window counts ``(m, codes)``: the largest of each bin's count beyond
        its expectation over the distance to its limit (1 at the limit), and the unseen count over its."""
        lo, hi = self._limits[i]
        unseen = counts[:, -1] / self._unseen_crits[i]
        if not lo.size:
            return unseen
        tested = self._tested[i]
        c = self._coarse(i, counts)[:, tested].astype(float)
        mean = self.windows[i] * (self._refs[i][tested] + 0.5) / (self._n_ref + 1.0)
        up = np.where(c > mean, (c - mean) / (hi - mean), 0.0)
        down = np.where((c < mean) & (lo >= 0), (mean - c) / np.maximum(mean - lo, 1e-12), 0.0)
        return np.maximum(np.maximum(up, down).max(1), unseen)

    def _record(self, i: int, counts: np.ndarray, score: float) -> None:
        unseen = int(counts[-1])
        coarse = self._coarse(i, counts)
        lo, hi = self._limits[i]
        labels = self._labels[: self._own[i]] + [_OTHER]
        beyond = [str(labels[j]) for k, j in enumerate(self._tested[i]) if coarse[j] <= lo[k] or coarse[j] >= hi[k]]
        self._last_alarm = {
            "event": self.n_events - 1, "test": "window", "window": self.windows[i], "score": score,
            "categories_beyond_limits": beyond, "unseen_in_window": unseen, "unseen_limit": int(self._unseen_crits[i]),
            "reference_shares": self._shares(labels, self._refs[i]), "recent_shares": self._shares(labels, coarse),
        }

    @staticmethod
    def _shares(labels: list[Hashable], counts: np.ndarray) -> dict[str, float]:
        total = max(float(counts.sum()), 1.0)
        return {str(labels[i]): float(counts[i] / total) for i in np.argsort(-counts)[:10]}

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
