"""Crossings a LatencyAnomaly kept out of its references, and what they vouch for later.

An event that crosses a threshold is kept out of every reference, so one spike
does not make the next one look normal.  Its views are recorded instead, as
``(event, value)``, for as long as the reference would have held it
(``window`` events).  Once ``after`` events old such a crossing is
*precedent*: a later value that it reaches (at or beyond it, on the same side)
is not new, and the detector ranks it plainly instead of through its fitted tail.
Otherwise a value that recurs with no change (1% of requests timing out at 30 s,
a rare second level of a quantised latency) would, once it crossed, be missing
from the references for good and alarm at every recurrence, each alarm keeping
one more out.  Within ``after`` events, and for a larger value, a repeat is
still extrapolated (one spike does not make the next one look normal); a spike
of the same size recurring later no longer alarms by itself.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from models.anomaly.conformal import MAX_SURPRISAL, ConformalReference, surprisal

__all__ = ["KeptOut", "count", "record", "short_view_cap"]

#: One reference's kept-out crossings, oldest first: ``(event, value)``.
KeptOut = collections.deque[tuple[int, float]]


def record(kept_out: dict[str, KeptOut], views: dict[str, float], *, n: int, window: int) -> None:
    """Keep the ``views`` of the crossing at event ``n`` in ``kept_out`` (one deque per reference),
    first dropping from every deque what the reference would no longer hold (``window`` events)."""
    for view, kept in kept_out.items():
        while kept and kept[0][0] <= n - window:
            kept.popleft()
        if view in views:
            kept.append((n, views[view]))


def count(kept: KeptOut, y: float, upper: bool, *, n: int, window: int, after: int, strict: bool = False) -> int:
    """Crossings of ``kept`` that are precedent at event ``n`` (older than ``after`` events, within the
    last ``window``) and at or beyond ``y`` (strictly beyond if ``strict``) on the ``upper`` or lower side."""
    first, last = n - window, n - after
    sign = 1.0 if upper else -1.0
    return sum(1 for e, v in kept if first < e < last and (sign * v > sign * y if strict else sign * v >= sign * y))


def short_view_cap(short: ConformalReference, long: ConformalReference, y: float, above: Callable[[float, bool], int]) -> float:
    """Largest surprisal of the short view for ``y`` that the long reference supports.

    Beyond the short window's largest value the short view extrapolates a tail fitted
    to its own extremes.  Where the long reference (with its precedents: ``above(v,
    strict)`` counts those at or beyond ``v``) holds values at least as large, that
    tail is not trusted further than the long reference's own:
    ``p >= (1 / (n_short + 1)) * (m_y + 1) / (m + 1)``, the chance of exceeding the
    short window's maximum times the long reference's share, among its ``m`` values
    above that maximum, of the ``m_y`` at or beyond ``y`` (a timeout recurring once in
    100 events is missing from a short window now and then, and is not new then).
    """
    top = short.highest
    if y <= top:
        return MAX_SURPRISAL
    m_y = long.count_above(y) + above(y, False)
    if not m_y:
        return MAX_SURPRISAL
    m = long.count_above(top, strict=True) + above(top, True)
    return surprisal((m_y + 1) / ((m + 1) * (len(short) + 1)))
