"""The refractory rule shared by LatencyAnomaly and GpuAnomaly: one incident, one alarm."""

from __future__ import annotations

import collections

from models.anomaly.refractory import REPEAT_MARGIN, Crossings, repeats


def test_a_crossing_is_news_only_when_clearly_more_severe_than_each_recent_one():
    recent: Crossings = collections.deque()
    assert not repeats(recent, 100, 2.0, span=50)  # the first crossing
    assert repeats(recent, 110, 2.0, span=50)  # as severe: the same incident
    assert repeats(recent, 120, 2.0 * REPEAT_MARGIN, span=50)  # 10 % more: still the same
    # Repeats are recorded: 2.2 at 120 now holds back what is not over 10 % above it.
    assert repeats(recent, 130, 2.0 * REPEAT_MARGIN * 1.01, span=50)
    assert not repeats(recent, 140, 2.5, span=50)  # over 10 % above each crossing in the span
    assert repeats(recent, 165, 2.7, span=50)  # 2.5 at 140 is still in the span
    assert not repeats(recent, 300, 1.0, span=50)  # the span is over: a new incident


def test_no_span_means_every_crossing_is_news():
    recent: Crossings = collections.deque()
    assert not repeats(recent, 1, 2.0, span=0)
    assert not repeats(recent, 2, 2.0, span=0)
    assert not recent
