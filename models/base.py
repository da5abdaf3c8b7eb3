"""The one contract every inferwatch detector follows.

A detector learns from a stream, one observation at a time (``update``) or a
batch of observations in stream order (``update_many``); both paths must leave
the detector in the same state and raise the same alarms.  Results are read-only
properties: ``score`` (high = more anomalous / drifted), ``threshold`` (the
score at which it fires), ``fired`` (did the last observation raise an alarm),
``crossed`` (did it cross the threshold, raised or held back as a repeat of a
recent alarm: an incident still going on).
``evidence()`` gives a short JSON-able summary for alert records.
``snapshot()`` / ``restore()`` move the full state through bytes so a Faust
table (changelog topic) can persist it.  ``rebudget()`` gives a running detector
another false-alarm budget (its thresholds follow; its reference stays).

Observations are a float for univariate detectors and a 1-D ``numpy`` array for
vectorised / multivariate ones (one entry per feature or per GPU field).
"""

from __future__ import annotations

import abc
import copy
import inspect
import pickle
from typing import Any, ClassVar, Self

import numpy as np

from models.calibration import FalseAlarmBudget, check_budget

__all__ = ["Detector", "check_choice", "check_int", "check_positive", "check_probability", "is_finite_number"]

#: Version tag written into every snapshot; bump when a detector's state layout changes.
SNAPSHOT_VERSION = 1


class Detector(abc.ABC):
    """Base class: online detector with a calibrated threshold.

    Subclasses implement ``_learn_one`` and the ``score`` / ``threshold``
    properties and set ``self._fired`` (and, holding back repeats,
    ``self._repeated``) in ``_learn_one``.  They may override ``update_many``
    with a vectorised version that must match the one-by-one path exactly.
    """

    #: Short name used in alert records and metric labels.
    name: ClassVar[str] = "detector"

    _fired: bool = False
    _repeated: bool = False
    budget: FalseAlarmBudget

    # -- learning ---------------------------------------------------------
    def update(self, x: Any) -> None:
        """Learn from one observation; afterwards ``fired`` tells whether it alarmed."""
        self._learn_one(x)

    def update_many(self, xs: Any) -> np.ndarray:
        """Learn from observations in stream order (along axis 0).

        Returns the indices (into ``xs``) of the observations that fired.
        """
        return self.update_crossings(xs)[0]

    def update_crossings(self, xs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Learn from ``xs`` one observation at a time (a vectorised :meth:`update_many` must match this
        path); returns the indices that fired and those that crossed the threshold without firing
        (repeats of a recent alarm: its incident goes on)."""
        fired: list[int] = []
        repeated: list[int] = []
        for i, x in enumerate(xs):
            self._learn_one(x)
            if self._fired:
                fired.append(i)
            elif self.crossed:
                repeated.append(i)
        return np.asarray(fired, dtype=np.int64), np.asarray(repeated, dtype=np.int64)

    @abc.abstractmethod
    def _learn_one(self, x: Any) -> None:
        """Update the state with one observation and set ``self._fired``."""

    # -- budget -------------------------------------------------------------
    def rebudget(self, budget: FalseAlarmBudget) -> None:
        """Hold ``budget`` from now on: every threshold becomes the one a detector built with ``budget``
        would hold on the same reference, while the reference and the running statistics stay (no new
        warm-up).  Raises ``ValueError`` if ``budget`` is not a ``FalseAlarmBudget``."""
        check_budget(budget)
        self.budget = budget
        self._apply_budget()

    @abc.abstractmethod
    def _apply_budget(self) -> None:
        """Set every threshold from ``self.budget`` (those a detector sets once its reference is
        learned only when it has one)."""

    # -- read-only results ---------------------------------------------------
    @property
    @abc.abstractmethod
    def score(self) -> float:
        """Current score; high means anomalous or drifted."""

    @property
    @abc.abstractmethod
    def threshold(self) -> float:
        """Score at or above which the detector fires."""

    @property
    def fired(self) -> bool:
        """Whether the last observation raised an alarm."""
        return self._fired

    @property
    def crossed(self) -> bool:
        """Whether the last observation crossed the threshold: it fired, or (a detector that raises
        one alarm per incident sets ``_repeated``) it was held back as a repeat of a recent crossing,
        past the warm-up: the incident goes on."""
        return self._fired or self._repeated

    def evidence(self) -> dict[str, Any]:
        """A short JSON-able summary of why the score is what it is."""
        return {"score": float(self.score), "threshold": float(self.threshold)}

    # -- persistence ------------------------------------------------------
    def snapshot(self) -> bytes:
        """Serialise the full state (parameters, learned state, random state)."""
        return pickle.dumps((SNAPSHOT_VERSION, self), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> Self:
        """Rebuild a detector from ``snapshot()`` bytes.

        Raises ``ValueError`` for bytes of another version or class.
        """
        try:
            version, detector = pickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is bad input
            raise ValueError(f"not a detector snapshot: {exc}") from exc
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {version}, expected {SNAPSHOT_VERSION}")
        if not isinstance(detector, cls):
            raise ValueError(f"snapshot holds {type(detector).__name__}, not {cls.__name__}")
        return detector

    def clone(self) -> Self:
        """A fresh, untrained detector with the same parameters."""
        return type(self)(**copy.deepcopy(self._params()))

    def _params(self) -> dict[str, Any]:
        """Constructor parameters, read from attributes of the same name."""
        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


def is_finite_number(value: object) -> bool:
    """A real int or float (numpy's too; not a bool, string or array) that is finite."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return real and bool(np.isfinite(value))


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a (strictly) positive finite number."""
    ok = is_finite_number(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def check_int(name: str, value: Any, low: int, high: int | None = None, *, low_text: str = "", allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) in ``[low, high]`` (no upper
    bound if ``high`` is None), or None if ``allow_none``; ``low_text`` names ``low`` in the message."""
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f">= {low_text or low}" if high is None else f"in [{low_text or low}, {high}]"
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int {bound}{none}, got {value!r}")


def check_probability(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 < value < 1``."""
    if not (is_finite_number(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in the open interval (0, 1), got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the valid values unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
