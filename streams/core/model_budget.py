"""A model version's false-alert budget per day, spread evenly over its detectors.

With ``INFERWATCH_FALSE_ALERTS_PER_MODEL_PER_DAY`` set, a model version's detectors do
not each take ``INFERWATCH_FALSE_ALARMS_PER_MILLION``: once its feature schema is fixed
(its first events), the version's event rate is read from those events' times and the
daily budget is divided over its *units* — each budget a detector holds per feature
(numeric drift and missing rate per feature, one per categorical feature, confidence and
entropy, multivariate drift, predicted-class shares) plus one for latency: the latency
detectors of all its hosts together see the version's whole rate, so at one budget per
million events each they raise as many false alarms as one detector would.  Every unit
gets the same budget per million events::

    per_million = alerts_per_day / units * 1e6 / (rate * 86,400)

An alarm is at most one alert (alerts are deduplicated), so the version's false alerts
per day stay within the setting at that rate.  The rate is measured again over every
:class:`RateWindow` (at least 1,000 events and 10 minutes of event time); two windows in
a row :data:`RATE_CHANGE` times above or below the rate the budget was spread at (25 %),
and within it of each other, spread it again at the new rate (one event with a wrong
time stretches one window only), and every detector takes its new budget in place
(``Detector.rebudget``: its reference stays).  A canary that grows to full traffic
keeps the day's budget instead of raising false alerts in proportion; since each
stretch of time spends its own share of the day's budget, a rate that varies over the
day (busy days, quiet nights) keeps the total too.  GPU detectors are per GPU, not per
model: they keep the per-million budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from streams.records import InferenceEvent

__all__ = ["LOWEST_PER_MILLION", "RATE_CHANGE", "RateWindow", "budget_units", "event_rate", "per_million", "rate_moved"]

#: Bounds of a derived budget (a detector needs one in (0, 1e6)): one in 10^12 events at least, and
#: one in ten at most, however slow or fast the rate.
LOWEST_PER_MILLION, HIGHEST_PER_MILLION = 1e-6, 1e5
#: How far (a factor, either way) a measured rate must move from the budgeted one to spread the budget again.
RATE_CHANGE = 1.25


def event_rate(events: Sequence[InferenceEvent]) -> float | None:
    """Events per second of event time over ``events`` (``None``: fewer than two, or no time between them)."""
    if len(events) < 2:
        return None
    times = [float(e.ts) for e in events]
    span = max(times) - min(times)
    return (len(events) - 1) / span if span > 0 else None


def budget_units(numeric: int, missing: int, categorical: int, multivariate: bool) -> int:
    """Budgets a version's detectors hold: per numeric feature, per missing-rate feature, per
    categorical one, multivariate (if any), confidence and entropy, predicted classes, latency."""
    return numeric + missing + categorical + int(multivariate) + 2 + 1 + 1


def per_million(alerts_per_day: float, rate: float, units: int) -> float:
    """Each unit's false alarms per million events for ``alerts_per_day`` over ``units`` at ``rate`` events/s."""
    if alerts_per_day <= 0 or rate <= 0 or units < 1:
        raise ValueError("alerts_per_day and rate must be > 0 and units >= 1")
    value = alerts_per_day / units * 1e6 / (rate * 86_400.0)
    return min(max(value, LOWEST_PER_MILLION), HIGHEST_PER_MILLION)


def rate_moved(budgeted: float | None, measured: float) -> bool:
    """Whether ``measured`` is :data:`RATE_CHANGE` times above or below ``budgeted`` (``None``: none yet)."""
    return budgeted is None or not (1.0 / RATE_CHANGE < measured / budgeted < RATE_CHANGE)


@dataclass
class RateWindow:
    """Events per second of event time over successive windows, each of at least ``events`` events
    spanning at least ``seconds``.

    >>> w = RateWindow(events=3, seconds=2.0)
    >>> w.add([0.0, 1.0]), w.add([2.0, 3.0])
    (None, 1.0)
    >>> w.add([10.0, 10.5, 11.0])  # a new window: 3 events over 1 s is not yet 2 s
    >>> w.add([12.0])
    1.5
    """

    events: int = 1000
    seconds: float = 600.0
    _start: float | None = None
    _end: float = -math.inf
    _count: int = 0

    def add(self, times: Sequence[float]) -> float | None:
        """Count events at ``times``; the rate over the window they close (the next one starts with the
        next call), ``None`` while it stays open."""
        if not times:
            return None
        first, last = min(times), max(times)
        self._start = first if self._start is None else min(self._start, first)
        self._end = max(self._end, last)
        self._count += len(times)
        span = self._end - self._start
        if self._count < self.events or span < self.seconds:
            return None
        rate = (self._count - 1) / span
        self._start, self._end, self._count = None, -math.inf, 0
        return rate
