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
per day stay within the setting at that rate; a rate that later grows raises more.
GPU detectors are per GPU, not per model: they keep the per-million budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.records import InferenceEvent

__all__ = ["LOWEST_PER_MILLION", "budget_units", "event_rate", "per_million"]

#: Bounds of a derived budget (a detector needs one in (0, 1e6)): one in 10^12 events at least, and
#: one in ten at most, however slow or fast the rate.
LOWEST_PER_MILLION, HIGHEST_PER_MILLION = 1e-6, 1e5


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
