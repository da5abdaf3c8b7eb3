"""Shared lifecycle of the drift detectors: learning -> monitoring.

A detector learns its reference from the first ``warmup`` events (rows of
``F`` values), then monitors.  ``freeze()`` ends the warm-up early,
``learn_reference(xs)`` loads a baseline, ``reset()`` restarts the change
statistics and keeps the reference, ``relearn()`` starts a new warm-up.
Subclasses implement ``_start(sample)``, ``_monitor(chunk) -> fired rows`` (for
chunks of at most ``MAX_BATCH`` rows),
``_clear(rows)`` and the results.  NaN and +-inf both mean "missing".
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from models.base import Detector, check_int
from models.calibration import check_budget
from models.drift._cusum import MAX_BATCH

__all__ = ["WarmupDetector", "check_allowances", "check_reference_args"]


def check_reference_args(warmup: Any, budget: Any, features: Any) -> None:
    """The arguments every warm-up detector shares: ``warmup`` an int >= 100, ``budget`` a
    ``FalseAlarmBudget``, ``features`` None or a tuple of str; ``ValueError`` naming the bad one."""
    check_int("warmup", warmup, 100)
    check_budget(budget)
    if features is not None and not (isinstance(features, tuple) and all(isinstance(f, str) for f in features)):
        raise ValueError(f"features must be None or a tuple of str, got {features!r}")


def check_allowances(name: str, ks: Any) -> None:
    """Raise ``ValueError`` unless ``ks`` is a non-empty tuple of CUSUM allowances in (0, 5]."""
    if not (isinstance(ks, tuple) and ks and all(isinstance(k, (int, float)) and 0 < k <= 5 for k in ks)):
        raise ValueError(f"{name} must be a non-empty tuple of numbers in (0, 5], got {ks!r}")


class WarmupDetector(Detector):
    """Base for detectors whose reference comes from a warm-up of ``warmup`` rows."""

    warmup: int
    features: tuple[str, ...] | None

    def relearn(self) -> None:
        """Forget the reference and start a new warm-up."""
        self.phase = "learning"
        self._buf: np.ndarray | None = None
        self._n_buf = 0
        self._fired = False
        self._n_cols: int | None = None if self.features is None else len(self.features)
        self.n_events = 0
        self.alarms = 0
        self._last_alarm: dict[str, Any] | None = None
        #: For each row that fired in the last ``update``/``update_many`` call,
        #: the indices of the features that fired on it.
        self.fired_features: list[np.ndarray] = []

    def freeze(self) -> None:
        """End the warm-up now and monitor against what was learned so far."""
        if self.phase == "learning" and self._buf is not None and self._n_buf >= 2:
            self._begin(self._buf[: self._n_buf])

    def learn_reference(self, xs: Any) -> None:
        """Take the reference from a baseline sample ``(n, F)`` and start monitoring."""
        self.relearn()
        xs = self._rows(xs)
        self._begin(np.where(np.isinf(xs), np.nan, xs))

    def reset(self) -> None:
        """Restart the change statistics; keep the reference."""
        if self.phase == "monitoring":
            self._clear(slice(None))
        self._fired = False

    def _begin(self, sample: np.ndarray) -> None:
        if self._n_cols is not None and sample.shape[1] != self._n_cols:
            raise ValueError(f"expected {self._n_cols} features per event, got {sample.shape[1]}")
        self._n_cols = sample.shape[1]
        self._buf, self.phase = None, "monitoring"
        self._start(sample)

    def _rows(self, xs: Any) -> np.ndarray:
        xs = np.asarray(xs, dtype=float)
        if xs.ndim == 1:
            xs = xs.reshape(-1, 1) if self._n_cols in (None, 1) else xs.reshape(1, -1)
        return xs

    def _learn_one(self, x: Any) -> None:
        self._run(np.asarray(x, dtype=float).reshape(1, -1))

    def update_many(self, xs: Any) -> np.ndarray:
        return self._run(self._rows(xs))

    def _run(self, xs: np.ndarray) -> np.ndarray:
        if self._n_cols is not None and xs.shape[1] != self._n_cols:
            raise ValueError(f"expected {self._n_cols} features per event, got {xs.shape[1]}")
        if np.isinf(xs).any():  # not a value: treated as missing
            xs = np.where(np.isinf(xs), np.nan, xs)
        fired: list[int] = []
        self.fired_features = []
        i = 0
        while i < len(xs):
            if self.phase == "learning":
                if self._buf is None:
                    self._buf = np.empty((self.warmup, xs.shape[1]))
                    self._n_cols = xs.shape[1]
                take = min(self.warmup - self._n_buf, len(xs) - i)
                self._buf[self._n_buf : self._n_buf + take] = xs[i : i + take]
                self._n_buf += take
                self.n_events += take
                i += take
                self._fired = False
                if self._n_buf == self.warmup:
                    self._begin(self._buf)
                continue
            chunk = xs[i : i + MAX_BATCH]  # the CUSUM batch sums are exact up to MAX_BATCH events
            fired.extend(i + j for j in self._monitor(chunk))
            i += len(chunk)
        return np.asarray(fired, dtype=np.int64)

    def _apply_budget(self) -> None:
        if self.phase == "monitoring":
            self._thresholds()  # while learning, _start reads the budget

    @abc.abstractmethod
    def _thresholds(self) -> None:
        """Set the thresholds from ``self.budget`` and the reference learned."""

    @abc.abstractmethod
    def _start(self, sample: np.ndarray) -> None:
        """Learn the reference from ``sample`` ``(n, F)`` and set up the statistics."""

    @abc.abstractmethod
    def _monitor(self, chunk: np.ndarray) -> list[int]:
        """Process rows in order; return those that fired."""

    @abc.abstractmethod
    def _clear(self, rows: np.ndarray | slice) -> None:
        """Restart the change statistics of the given features."""

    @property
    def threshold(self) -> float:
        return 1.0

    def _name(self, f: int) -> str:
        return self.features[f] if self.features is not None else str(int(f))

    def evidence(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "phase": self.phase,
            "events": self.n_events,
            "alarms": self.alarms,
            "last_alarm": self._last_alarm,
        }
