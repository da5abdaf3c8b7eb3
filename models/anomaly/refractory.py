"""One incident, one alarm: crossings that repeat a recent, at least as severe one are not raised."""

from __future__ import annotations

import collections
import math

__all__ = ["BELOW_ONE", "Crossings", "repeats"]

#: Ratio (CUSUM / threshold) reported for a repeated crossing: just below the threshold.
BELOW_ONE = math.nextafter(1.0, 0.0)

#: A detector's crossings within its refractory span, oldest first: ``(event, ratio)``.
Crossings = collections.deque[tuple[int, float]]


def repeats(recent: Crossings, n: int, ratio: float, span: int) -> bool:
    """Whether a crossing at event ``n`` with ``ratio`` repeats one of ``recent`` (within the last
    ``span`` events, at least as severe); records it in ``recent`` (unless ``span`` is 0).

    Repeats are recorded too, so an incident that keeps crossing stays one incident.
    """
    while recent and recent[0][0] < n - span:
        recent.popleft()
    repeat = any(r >= ratio for _, r in recent)
    if span:
        recent.append((n, ratio))
    return repeat
