"""Keep the input topics flowing: two faust-streaming consumer behaviours that stall a busy worker.

1. **Paused input partitions.**  When a stream's queue passes 80 % of
   ``stream_buffer_maxsize`` faust takes the partition out of the fetch set
   until the queue drains to 40 %; the fetch loop then waits up to a second for
   records of the *other* partitions (idle GPU, control, table topics) and is
   not woken when the queue drains, so the agent starves.  For the input topics
   ``install`` drops that pause: a full queue then blocks delivery until the
   agent takes its next batch (faust's bounded-queue path, woken at once), so the
   buffer stays bounded by ``stream_buffer_maxsize``.  Other topics keep the pause
   (a slow Alertmanager must not hold up the inputs).
2. **A long poll in front of the input fetch.**  aiokafka keeps one fetch in
   flight per broker; when it was sent while the input partition still had
   records, it holds only idle partitions and the broker keeps it ``fetch_max_wait_ms``
   (faust fixes 1500 ms) before the input partition can be fetched again.
   ``install`` sets that wait to ``fetch_max_wait_ms``.

Tested against faust-streaming 0.15 (``tests/unit/test_input_flow.py`` fails
loudly if the internals move).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["DEFAULT_FETCH_MAX_WAIT_MS", "install"]

#: Broker long-poll of a fetch with no new data: a stall of at most this much per fetched chunk; ~10 empty fetches/s when idle.
DEFAULT_FETCH_MAX_WAIT_MS = 100


def install(consumer: Any, topics: Collection[str], *, fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS) -> None:
    """Apply both changes above to ``consumer`` (a faust aiokafka ``Consumer``, before it starts).

    Raises ``RuntimeError`` when the consumer lacks the faust internals relied on.
    """
    thread = getattr(consumer, "_thread", None)
    if not hasattr(consumer, "on_buffer_full") or not hasattr(thread, "_create_worker_consumer"):
        raise RuntimeError("this faust-streaming consumer lacks on_buffer_full or _thread._create_worker_consumer")
    faust_on_buffer_full = consumer.on_buffer_full
    create_worker_consumer = thread._create_worker_consumer

    def on_buffer_full(tp: Any) -> None:
        if tp.topic not in topics:
            faust_on_buffer_full(tp)

    def create_consumer(transport: Any) -> Any:
        kafka_consumer = create_worker_consumer(transport)
        kafka_consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts its fetcher
        return kafka_consumer

    consumer.on_buffer_full = on_buffer_full
    thread._create_worker_consumer = create_consumer
