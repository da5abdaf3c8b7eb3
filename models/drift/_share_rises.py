"""Bernoulli CUSUMs for a rising category share: a MissingRate over one indicator column per category."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.calibration import FalseAlarmBudget
from models.drift.missing_rate import MissingRate

__all__ = ["share_budget", "share_cusums", "share_rises"]


def share_cusums(counts: list[int], labels: tuple[str, ...], per_million: float) -> MissingRate | None:
    """CUSUMs for a rise of each share whose reference counts are ``counts`` (named ``labels``; the last
    column takes every code beyond it), ``per_million`` split over the columns MissingRate watches (a
    share of at most 90 %); ``None`` for a reference of under 100 values."""
    n = sum(counts)
    if n < 100:
        return None
    cusums = MissingRate(warmup=n, budget=share_budget(counts, per_million), features=labels)
    reference = np.ones((n, len(counts)))  # NaN marks the value's category (order is irrelevant)
    reference[np.arange(n), np.repeat(np.arange(len(counts)), counts)] = np.nan
    cusums.learn_reference(reference)
    return cusums


def share_budget(counts: list[int], per_million: float) -> FalseAlarmBudget:
    """Each column's budget: ``per_million`` split over the columns whose share is at most 90 %."""
    n = sum(counts)
    watched = sum(1 for k in counts if k <= 0.9 * n)
    return FalseAlarmBudget(per_million / max(watched, 1))


def share_rises(cusums: MissingRate, codes: np.ndarray, events: int) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Feed ``cusums`` the category ``codes`` (the first is value ``events``): the positions in ``codes``
    at which they alarm, and the last alarm's evidence (``None`` without one)."""
    last = len(cusums.features) - 1  # type: ignore[arg-type]  # share_cusums always names the columns
    marks = np.ones((codes.size, last + 1))
    marks[np.arange(codes.size), np.minimum(codes, last)] = np.nan
    hits = cusums.update_many(marks)
    if not hits.size:
        return hits, None
    alarm = cusums.evidence()["last_alarm"]
    return hits, {"event": events + int(hits[-1]), "test": "share_rise", "categories": alarm["features"], "detail": alarm["detail"]}
