"""LatencyAnomaly's CUSUMs: the view and p-value side each one scores, and their thresholds.

A *view* is one number per event scored against its own sliding reference
(see :class:`~models.anomaly.LatencyAnomaly`):

* the value, upper tail: CUSUMs *spike* (``spike_k``) and, while no period holds,
  *level_shift* (``shift_k``; while the values wander, once per block of values, their
  median against earlier blocks': :mod:`~models.anomaly.latency_levels`);
* the step ``y_t - y_t-1`` over disjoint pairs, in two phases (pairs ending at even
  events, pairs ending at odd ones), both tails: per phase *jump* (``spike_k``) and
  *volatility* (``volatility_k``);
* while a period holds, the *seasonal residual* (the value minus the median of the
  same phase in the last three periods, or fifteen once that many are kept), both
  tails: *seasonal_spike* (``spike_k``) and *seasonal_shift* (``shift_k``; for a
  short period, and a long one whose residual does not wander, once per block of
  residuals, their median against earlier blocks': :mod:`~models.anomaly.season_blocks`,
  its threshold for an ARL in blocks);
* the value's lower tail against the value's reference: *drop* (``spike_k``), far
  faster than usual, e.g. requests failing fast (the step view alone sees only the
  edge of a drop, and only as large as the steps before it);
* while no period holds, the value's upper tail against a *short* reference of the
  last ``short_window`` values: *spike* (``spike_k``).  A spike is new relative to the
  last hours even when the long reference still holds similar ones from days ago, or
  (early in a stream) too few values to rank it far out; the short window's tail fit
  reaches small p-values sooner, and is trusted only as far as the long reference
  allows (:func:`~models.anomaly.precedents.short_view_cap`).  Under no change its
  p-values are conformal too, so it takes an even share of the budget like every
  other CUSUM.  While a period holds it is off: the regular daily rise would be new
  relative to the night before it.

The value's *level_shift* is off while a period holds for the same reason: against
a reference of every phase, the daily high reads as a level shift; the seasonal
residual compares each value with its own phase.  The single-event tails stay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from models.anomaly.cusum_calibration import cusum_threshold

__all__ = [
    "BY_VIEW",
    "CUSUMS",
    "LEVEL_SHIFT",
    "REF_OF",
    "SEASONAL",
    "SEASONAL_SHIFT",
    "SEASON_OFF",
    "SIDES",
    "other_views_evidence",
    "thresholds",
]

#: The CUSUMs: (alarm kind, view, side of the p-value, which k parameter).
CUSUMS = (
    ("spike", "value", "upper", "spike_k"),
    ("level_shift", "value", "upper", "shift_k"),
    ("jump", "pair0", "two-sided", "spike_k"),
    ("volatility", "pair0", "two-sided", "volatility_k"),
    ("jump", "pair1", "two-sided", "spike_k"),
    ("volatility", "pair1", "two-sided", "volatility_k"),
    ("seasonal_spike", "season", "two-sided", "spike_k"),
    ("seasonal_shift", "season", "two-sided", "shift_k"),
    ("drop", "low", "lower", "spike_k"),
    ("spike", "short", "upper", "spike_k"),
)
SEASONAL = (6, 7)  # CUSUMs used only while a period holds
#: The seasonal_shift CUSUM, which the residual feeds once per block (``season_blocks``; see ``latency_season``).
SEASONAL_SHIFT = next(i for i, c in enumerate(CUSUMS) if c[:2] == ("seasonal_shift", "season"))
#: The value's level_shift CUSUM, which the values feed once per block while they wander (``latency_levels``).
LEVEL_SHIFT = next(i for i, c in enumerate(CUSUMS) if c[:2] == ("level_shift", "value"))
#: CUSUMs (kind, view) not in use while a period holds: the runs of the value against a reference of
#: every phase of the cycle, and the short reference.  The value's single-event tails (*spike*, *drop*)
#: stay: a value far beyond every phase is still news, and the residual's tail fit ranks it less far out
#: (a latency ten times the usual, in a cycle of log amplitude 0.3: missed 3 times in 10 without them).
SEASON_OFF = (("level_shift", "value"), ("spike", "short"))
#: Each view and the side of its p-value, in scoring order.
SIDES = (
    ("value", "upper"),
    ("pair0", "two-sided"),
    ("pair1", "two-sided"),
    ("season", "two-sided"),
    ("low", "lower"),
    ("short", "upper"),
)
BY_VIEW = {v: [i for i, c in enumerate(CUSUMS) if c[1] == v] for v, _ in SIDES}
REF_OF = {"low": "value"}  # the low tail of the value is scored against the value's reference


def thresholds(
    ks: Sequence[float], arl: float, *, drops: bool, short_window: int, season_block: int = 0, level_block: int = 0
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Thresholds ``h`` of every CUSUM (reference values ``ks``, in ``CUSUMS`` order) while no period
    holds, while one does, while the residual is scored in blocks of ``season_block``,
    and while no period holds and the values' level_shift is scored in blocks of ``level_block``
    (``inf``: not in use), for an in-control run length of ``arl`` events in all.

    While a period holds the :data:`SEASON_OFF` CUSUMs are not in use (a snapshot from before keeps
    its thresholds, and with them the value's level_shift in use throughout).  The budget is
    split evenly over the CUSUMs in use.  A CUSUM's ARL in steps is that in events over the events
    per step: two for the pair CUSUMs, ``season_block`` for seasonal_shift in blocks and
    ``level_block`` for level_shift in blocks (with ``season_block`` 0 the third list is the
    second's, with ``level_block`` 0 the fourth is the first's).
    """
    out = []
    for seasonal, block in ((False, 0), (True, 0), (True, season_block), (False, level_block)):
        use = [
            (i not in SEASONAL or seasonal)
            and (c[1] != "low" or drops)
            and (c[1] != "short" or short_window > 0)
            and not (seasonal and c[:2] in SEASON_OFF)
            for i, c in enumerate(CUSUMS)
        ]
        n = sum(use)
        blocked = SEASONAL_SHIFT if seasonal else LEVEL_SHIFT
        steps = [2.0 if c[1].startswith("pair") else float(block) if i == blocked and block else 1.0 for i, c in enumerate(CUSUMS)]
        out.append([cusum_threshold(k, n * arl / per) if u else math.inf for k, u, per in zip(ks, use, steps)])
    return out[0], out[1], out[2], out[3]


def other_views_evidence(ratios: Sequence[float], crossing: int) -> float:
    """Sum, over the views other than that of CUSUM ``crossing``, of each view's largest ``S / h``
    (``ratios`` in ``CUSUMS`` order; a view's CUSUMs score the same p-values, so each view counts once)."""
    by_view: dict[str, float] = {}
    for c, r in zip(CUSUMS, ratios):
        by_view[c[1]] = max(by_view.get(c[1], 0.0), r)
    return sum(by_view.values()) - by_view[CUSUMS[crossing][1]]
