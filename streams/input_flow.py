"""Keep the input topics flowing: a short broker long poll in front of the input fetch.

aiokafka keeps one fetch in flight per broker; when it was sent while the input
partition still had records, it holds only idle partitions (GPU, control,
alerts, table changelogs) and the broker keeps it ``fetch_max_wait_ms``
(faust fixes 1500 ms) before the input partition can be fetched again.
``install`` sets that wait to ``fetch_max_wait_ms``.  (The input records
themselves bypass Faust's stream buffers, so its pausing of partitions with a
full buffer never applies to them: ``streams.input_batches``.)

Tested against faust-streaming 0.15 (``tests/unit/test_input_flow.py`` fails
loudly if the internals move).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_FETCH_MAX_WAIT_MS", "install"]

#: Broker long-poll of a fetch with no new data: a stall of at most this much per fetched chunk; ~10 empty fetches/s when idle.
DEFAULT_FETCH_MAX_WAIT_MS = 100


def install(consumer: Any, *, fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS) -> None:
    """Make ``consumer`` (a faust aiokafka ``Consumer``, before it starts) create its Kafka consumer with
    ``fetch_max_wait_ms``.  Raises ``RuntimeError`` when the consumer lacks the faust internals relied on."""
    thread = getattr(consumer, "_thread", None)
    if not hasattr(thread, "_create_worker_consumer"):
        raise RuntimeError("this faust-streaming consumer lacks _thread._create_worker_consumer")
    create_worker_consumer = thread._create_worker_consumer

    def create_consumer(transport: Any) -> Any:
        kafka_consumer = create_worker_consumer(transport)
        kafka_consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts its fetcher
        return kafka_consumer

    thread._create_worker_consumer = create_consumer
