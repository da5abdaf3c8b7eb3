"""All detectors of one model version: input, confidence and prediction drift.

The feature schema is fixed from the first ``schema_events`` events (buffered,
then replayed): features whose values are numbers or booleans are numeric,
strings categorical, up to ``max_features`` in order of first appearance (those
beyond are listed in ``unmonitored``); features appearing later are ignored.  The
missing-value rate is watched for every monitored feature: a numeric one missing,
null or not a number, a categorical one missing or not a string.
``process(events)`` updates every detector in batch and returns a ``Signal``
for each alarm, at the event that raised it; a detector that finishes learning its
reference in the batch is logged (INFO).  ``learn_baseline(events)`` gives every
detector its reference from a baseline instead (the schema too, when not yet
fixed; events waiting for it are then monitored with the next batch).  With a daily
false-alert budget, the detectors' budgets follow the version's event rate
(:mod:`~streams.core.model_budget`).
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from streams.core.detectors import DetectorFactory
from streams.core.model_budget import RateWindow, budget_units, event_rate, per_million, rate_moved
from streams.core.signals import Signal
from streams.records import InferenceEvent

__all__ = ["VersionMonitor", "feature_schema"]

MULTIVARIATE = "_all_features"
log = logging.getLogger(__name__)


def _number(value: Any) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    return float(value)


def _matrix(events: Sequence[InferenceEvent], names: tuple[str, ...]) -> np.ndarray:
    """Events x numeric features as floats; missing, null and non-numeric values are NaN."""
    values_of = operator.itemgetter(*names)
    try:  # the common case: every event has every feature, all numeric (one C call per event)
        return np.array([values_of(e.features) for e in events], dtype=float).reshape(len(events), len(names))
    except (KeyError, TypeError, ValueError):
        pass
    rows = [[e.features.get(n, math.nan) for n in names] for e in events]
    try:
        return np.array(rows, dtype=float)  # every value numeric or absent
    except (TypeError, ValueError):
        cells = np.array(rows, dtype=object)
        cells[np.equal(cells, None)] = math.nan
        try:
            return cells.astype(float)
        except (TypeError, ValueError):  # a string where a number was learned
            return np.array([[_number(v) for v in row] for row in rows], dtype=float)


def feature_schema(events: Sequence[InferenceEvent], max_features: int) -> tuple[tuple[str, ...], tuple[str, ...], set[str]]:
    """``(numeric, categorical, unmonitored)`` feature names of ``events``: a feature is numeric when its
    first non-null value is a number or boolean, categorical when a string; up to ``max_features`` in order
    of first appearance, those beyond unmonitored."""
    kinds: dict[str, str] = {}
    unmonitored: set[str] = set()
    for event in events:
        for name, value in event.features.items():
            if value is None or name in kinds:
                continue
            if len(kinds) >= max_features:
                unmonitored.add(name)
                continue
            kinds[name] = "categorical" if isinstance(value, str) else "numeric"
    numeric = tuple(n for n, k in kinds.items() if k == "numeric")
    return numeric, tuple(n for n, k in kinds.items() if k == "categorical"), unmonitored


def _has_values(values: Any) -> bool:
    """Whether a detector's input holds anything but missing values (NaN rows, ``None`` labels); a
    missing-value rate learns from those too."""
    if isinstance(values, np.ndarray):
        return bool(values.size) and not bool(np.isnan(values).all())
    return any(v is not None for v in values)


def _feature_detail(evidence: dict[str, Any], feature: str) -> dict[str, Any]:
    """The per-feature part of a vectorised detector's last alarm, else its whole evidence."""
    alarm = evidence.get("last_alarm") or {}
    for detail in alarm.get("detail", ()):
        if detail.get("feature") == feature:
            return detail
    return alarm or evidence


class VersionMonitor:
    """Drift detectors of one (model, version)."""

    def __init__(
        self, model: str, version: str, factory: DetectorFactory, *, max_features: int = 256, schema_events: int = 100, alerts_per_day: float = 0.0
    ) -> None:
        self.model = model
        self.version = version
        self.factory = factory  # with the version's own budget once the schema is fixed, if ``alerts_per_day``
        self.alerts_per_day = alerts_per_day
        self.max_features = max_features
        self.schema_events = schema_events
        self._pending: list[InferenceEvent] | None = []
        self._schema_fixed = False
        self.numeric_names: tuple[str, ...] = ()
        self.categorical_names: tuple[str, ...] = ()
        self.missing_names: tuple[str, ...] = ()  # the features whose missing-value rate is watched
        self.unmonitored: set[str] = set()
        self.numeric = self.missing = self.multivariate = None  # type: ignore[assignment]
        self.categorical: dict[str, Any] = {}
        self.confidence = factory.confidence()
        self.prediction = factory.prediction()
        self.events = 0
        self.budget_rate: float | None = None  # events/s the daily budget is spread at (None: not spread)
        self._rate_window = RateWindow()
        self._moved_rate: float | None = None  # the last window's rate, if it moved from budget_rate

    # -- schema -----------------------------------------------------------
    def _fix_schema(self, events: Sequence[InferenceEvent]) -> None:
        self.numeric_names, self.categorical_names, unmonitored = feature_schema(events, self.max_features)
        self.unmonitored |= unmonitored
        self._schema_fixed = True
        self.missing_names = self.numeric_names + self.categorical_names
        if self.alerts_per_day > 0:
            self._spread_budget(events)
        f = self.factory
        if self.numeric_names:
            self.numeric = f.numeric(self.numeric_names)
        if self.missing_names:
            self.missing = f.missing(self.missing_names)
        if len(self.numeric_names) >= 2:
            self.multivariate = f.multivariate(self.numeric_names)
        self.categorical = {name: f.categorical() for name in self.categorical_names}

    def _spread_budget(self, events: Sequence[InferenceEvent]) -> None:
        """Give every detector the version's daily budget divided as :mod:`~streams.core.model_budget` says,
        at the rate of ``events`` (its first, or its baseline's)."""
        rate = event_rate(events)
        if rate is None:
            log.warning("%s %s: its first %d events span no time, so no event rate to spread %g false alerts a day over yet: "
                        "each detector keeps %g false alarms per million events until one is measured", self.model, self.version,
                        len(events), self.alerts_per_day, self.factory.false_alarms_per_million)
            return
        self._spread_at(rate)

    def _follow_rate(self, events: Sequence[InferenceEvent]) -> None:
        """Measure the event rate over the next window; spread the daily budget again once two windows
        in a row moved from it and agree (one event's wrong time, stretching one window, moves nothing)."""
        rate = self._rate_window.add([e.ts for e in events])
        if rate is None:
            return
        if not rate_moved(self.budget_rate, rate):
            self._moved_rate = None
        elif self.budget_rate is None or (self._moved_rate is not None and not rate_moved(self._moved_rate, rate)):
            self._moved_rate = None
            self._spread_at(rate)
        else:
            self._moved_rate = rate  # the next window confirms it, or not

    def _spread_at(self, rate: float) -> None:
        """Every detector's budget (the latency detectors': the factory's) for the daily budget at ``rate``."""
        numeric = len(self.numeric_names)
        units = budget_units(numeric, len(self.missing_names), len(self.categorical_names), numeric >= 2)
        self.factory = self.factory.with_budget(per_million(self.alerts_per_day, rate, units))
        for detector in self.detectors():
            detector.rebudget(self.factory.budget)
        log.info("%s %s: %g false alerts a day over %d detector budgets at %.3g events/s%s: %.3g false alarms per million events each",
                 self.model, self.version, self.alerts_per_day, units, rate,
                 "" if self.budget_rate is None else f" (was {self.budget_rate:.3g})", self.factory.false_alarms_per_million)
        self.budget_rate = rate

    # -- learning ---------------------------------------------------------
    def process(self, events: Sequence[InferenceEvent]) -> list[Signal]:
        """Update every detector with ``events`` (stream order); the alarms they raised."""
        if self._pending is not None:
            self._pending.extend(events)
            if len(self._pending) < self.schema_events and not self._schema_fixed:
                return []
            events, self._pending = self._pending, None
            if not self._schema_fixed:
                self._fix_schema(events)
        learning = [d for d in self.detectors() if getattr(d, "phase", None) == "learning"]
        signals = self._update(events)
        self.events += len(events)
        if self.alerts_per_day > 0:
            self._follow_rate(events)
        learned = [self._label(d) for d in learning if getattr(d, "phase", None) != "learning"]
        if learned:
            log.info("%s %s: reference learned, monitoring from event %d: %s", self.model, self.version, self.events, ", ".join(learned))
        return signals

    def learn_baseline(self, events: Sequence[InferenceEvent]) -> list[str]:
        """Take every drift detector's reference from ``events`` (a baseline of this version) and monitor
        from the next event; returns the detectors that did.  A detector whose input the baseline lacks
        (no confidence, say), or that cannot learn from it, keeps what it had (its warm-up, if learning)."""
        if not self._schema_fixed:
            self._fix_schema(events)  # and the daily budget, at the baseline's rate
        rows, labels, conf, preds = self._inputs(events)
        inputs: list[tuple[Any, Any]] = [(self.numeric, rows), (self.multivariate, rows)]
        if self.missing is not None:
            inputs.append((self.missing, self._missing_rows(rows, labels, len(events))))
        inputs += [(detector, labels[name]) for name, detector in self.categorical.items()]
        inputs += [(self.confidence, conf), (self.prediction, preds)]
        learned = []
        for detector, values in inputs:
            if detector is None or values is None or (detector is not self.missing and not _has_values(values)):
                continue
            try:
                detector.learn_reference(values)
            except ValueError as exc:
                log.warning("%s %s: %s cannot learn from the baseline (%s); it keeps its reference", self.model, self.version, self._label(detector), exc)
                continue
            learned.append(self._label(detector))
        return learned

    def _label(self, detector: Any) -> str:
        """The detector's name, and its feature for a categorical one."""
        feature = next((name for name, d in self.categorical.items() if d is detector), None)
        return f"{detector.name}[{feature}]" if feature is not None else str(detector.name)

    def _inputs(self, events: Sequence[InferenceEvent]) -> tuple[np.ndarray | None, dict[str, list[str | None]], list[Any], list[str | None]]:
        """What the detectors take from ``events``: the numeric rows (None: no numeric feature), each
        categorical feature's labels (None: missing or not a string), confidences or probabilities,
        predicted classes as text."""
        rows = _matrix(events, self.numeric_names) if self.numeric_names else None
        labels = {name: [v if isinstance(v := e.features.get(name), str) else None for e in events] for name in self.categorical}
        conf = [e.probabilities if e.probabilities else e.confidence for e in events]
        preds = [None if e.prediction is None else str(e.prediction) for e in events]
        return rows, labels, conf, preds

    def _update(self, events: Sequence[InferenceEvent]) -> list[Signal]:
        signals: list[Signal] = []
        rows, labels, conf, preds = self._inputs(events)
        if rows is not None:
            signals += self._vector(self.numeric, rows, events, "input_drift", self.numeric_names)
        if self.missing is not None:
            signals += self._vector(self.missing, self._missing_rows(rows, labels, len(events)), events, "input_drift", self.missing_names)
        if rows is not None and self.multivariate is not None:
            for i in self.multivariate.update_many(rows):
                signals.append(self._signal("input_drift", MULTIVARIATE, events[i].ts, self.multivariate, self.multivariate.evidence()))
        for name, detector in self.categorical.items():
            for i in detector.update_many(labels[name]):
                signals.append(self._signal("input_drift", name, events[i].ts, detector, detector.evidence()))
        if any(c is not None for c in conf):
            signals += self._vector(self.confidence, conf, events, "confidence_drift", ("confidence", "entropy"))
        if any(p is not None for p in preds):
            for i in self.prediction.update_many(preds):
                signals.append(self._signal("prediction_drift", "prediction", events[i].ts, self.prediction, self.prediction.evidence()))
        return signals

    def _missing_rows(self, rows: np.ndarray | None, labels: dict[str, list[str | None]], n: int) -> np.ndarray:
        """Events x :attr:`missing_names`: the numeric ``rows``, then per categorical feature 0 where
        the event has a label and NaN where not (a monitor restored from before categorical features
        were watched has only the numeric ones)."""
        columns = [rows] if rows is not None else []
        extra = self.missing_names[len(self.numeric_names) :]
        if extra:
            columns.append(np.array([[math.nan if v is None else 0.0 for v in labels[name]] for name in extra], dtype=float).T.reshape(n, len(extra)))
        return np.hstack(columns) if len(columns) > 1 else columns[0]

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("missing_names", state.get("numeric_names", ()))  # before categorical features' missing rate
        state.setdefault("alerts_per_day", 0.0)  # before a daily budget per model
        state.setdefault("_schema_fixed", state.get("_pending") is None)  # before baselines
        state.setdefault("budget_rate", None)  # before the daily budget followed the rate: spread at the next window's
        state.setdefault("_rate_window", RateWindow())
        state.setdefault("_moved_rate", None)
        self.__dict__.update(state)

    def _vector(self, detector: Any, rows: Any, events: Sequence[InferenceEvent], kind: str, names: tuple[str, ...]) -> list[Signal]:
        fired = detector.update_many(rows)
        if len(fired) == 0:
            return []
        evidence = detector.evidence()
        signals = []
        for i, features in zip(fired, detector.fired_features, strict=True):
            for f in features:
                detail = _feature_detail(evidence, names[f])
                signals.append(self._signal(kind, names[f], events[i].ts, detector, detail))
        return signals

    def _signal(self, kind: str, feature: str, ts: float, detector: Any, evidence: dict[str, Any]) -> Signal:
        score = float(evidence.get("score", detector.threshold))
        return Signal(
            kind=kind, ts=ts, score=max(score, float(detector.threshold)), threshold=float(detector.threshold),
            statistic=str(evidence.get("component", detector.name)), model=self.model, version=self.version,
            feature=feature, evidence=evidence,
        )

    # -- reading ------------------------------------------------------------
    def scores(self) -> list[tuple[str, str, float, float]]:
        """``(kind, feature, score, threshold)`` of every per-feature statistic, for metrics."""
        out: list[tuple[str, str, float, float]] = []
        for detector, names in ((self.numeric, self.numeric_names), (self.confidence, ("confidence", "entropy"))):
            if detector is not None and getattr(detector, "phase", "") == "monitoring":
                kind = "input_drift" if detector is self.numeric else "confidence_drift"
                out += [(kind, n, float(s), float(detector.threshold)) for n, s in zip(names, detector.scores, strict=True)]
        for name, detector in self.categorical.items():
            out.append(("input_drift", name, float(detector.score), float(detector.threshold)))
        if self.multivariate is not None:
            out.append(("input_drift", MULTIVARIATE, float(self.multivariate.score), float(self.multivariate.threshold)))
        out.append(("prediction_drift", "prediction", float(self.prediction.score), float(self.prediction.threshold)))
        return out

    def detectors(self) -> list[Any]:
        """Every detector, for reference commands (reset / relearn) and budgets."""
        found = [self.numeric, self.missing, self.multivariate, self.confidence, self.prediction, *self.categorical.values()]
        return [d for d in found if d is not None]
