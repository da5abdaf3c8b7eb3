"""One incident, one alarm: crossings that do not clearly outrank a recent one are not raised."""

from __future__ import annotations

import collections
import math

__all__ = ["BELOW_ONE", "REPEAT_MARGIN", "Crossings", "repeats"]

#: Ratio (CUSUM / threshold) reported for a repeated crossing: just below the threshold.
BELOW_ONE = math.nextafter(1.0, 0.0)

#: How many times the ratio of every crossing in the span a new one must exceed to be news.  An
#: incident that lasts crosses again and again, each time a hair more or less severe than the last
#: (a metric stuck flat through a daily cycle crossed every 6 samples, each ratio ~0.1 % above the
#: one before, and each was raised); 10 % more is a worse incident, not the same one re-measured.
REPEAT_MARGIN = 1.1

#: A detector's crossings within its refractory span, oldest first: ``(event, ratio)``.
Crossings = collections.deque[tuple[int, float]]


def repeats(recent: Crossings, n: int, ratio: float, span: int) -> bool:
    """Whether a crossing at event ``n`` with ``ratio`` repeats one of ``recent`` (within the last
    ``span`` events, and ``ratio`` at most ``REPEAT_MARGIN`` times its); records it in ``recent``
    (unless ``span`` is 0).

    Repeats are recorded too, so an incident that keeps crossing stays one incident.
    """
    while recent and recent[0][0] < n - span:
        recent.popleft()
    repeat = any(REPEAT_MARGIN * r >= ratio for _, r in recent)
    if span:
        recent.append((n, ratio))
    return repeat
