"""Input records straight from the consumer's fetch to the agents, one partition's records at a time.

faust-streaming turns every fetched record into a ``ConsumerMessage``, routes
it through the conductor onto a stream queue, wraps it in an ``Event`` and
tracks its ack: ~50 µs of Python per message on a worker, several times what
decoding it costs.  The input topics need none of that: what is processed and
committed there is the ``OffsetLedger``'s business (``streams.offsets``), not
Faust's acks.  ``install`` wraps the consumer's ``_wait_next_records`` (the
step between the fetch and Faust's per-message loop) so that the records of the
input topics are taken out of each fetch and queued as ``Chunk``s (one
partition's records, stamped with the consumer generation they were fetched
in); Faust's loop sees only the other topics.  ``InputBatches.batches`` hands
them to an agent in batches, and before each batch lets the fetch loop send its
next request to the consumer thread, so the next records are fetched and parsed
there while the agent computes (otherwise the two take turns).  A full queue
holds up the fetch loop, so at most ``max_chunks`` fetches of input records wait
in memory (as Faust's own stream buffer bounds them).

Tested against faust-streaming 0.15 (``tests/unit/test_input_batches.py`` fails
loudly if the internals move).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Chunk", "InputBatches", "install"]

#: Event-loop turns a batch waits, at most, for the fetch loop to have its next request out.
_MAX_YIELDS = 8


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive fetched records of one input partition (aiokafka ``ConsumerRecord``s)."""

    tp: Any
    generation_id: int
    records: Sequence[Any]


class InputBatches:
    """Per input topic, a bounded queue of fetched chunks and the batches an agent takes from it."""

    def __init__(self, topics: Collection[str], max_chunks: int, app: Any = None) -> None:
        if max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
        self.topics = frozenset(topics)
        self._queues: dict[str, asyncio.Queue[Chunk]] = {t: asyncio.Queue(max_chunks) for t in self.topics}
        self._app = app
        self.fetching = False  # the fetch loop is waiting for the consumer thread's next records

    async def put(self, chunk: Chunk) -> None:
        """Queue ``chunk``; waits while its topic's queue is full."""
        await self._queues[chunk.tp.topic].put(chunk)

    def queued(self, topic: str) -> int:
        """Chunks of ``topic`` waiting for its agent."""
        return self._queues[topic].qsize()

    async def batches(self, topic: str, max_records: int, within: float) -> AsyncIterator[list[Chunk]]:
        """Batches of ``topic``'s chunks, in fetch order: after the first chunk, more are added while they
        hold fewer than ``max_records`` records and ``within`` seconds have not passed (Faust's ``take`` rule)."""
        queue = self._queues[topic]
        loop = asyncio.get_running_loop()
        while True:
            chunks = [await queue.get()]
            count = len(chunks[0].records)
            deadline = loop.time() + within
            while count < max_records:
                if queue.empty():
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        chunk = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        break
                else:
                    chunk = queue.get_nowait()
                chunks.append(chunk)
                count += len(chunk.records)
            for _ in range(_MAX_YIELDS):  # the fetch loop, woken by the last chunk, first sends its next request
                if self.fetching:
                    break
                await asyncio.sleep(0)
            monitor = getattr(self._app, "monitor", None)
            if monitor is not None:  # Faust's "stream is slow / stalled" checks read this per partition
                now = time.monotonic()
                for chunk in chunks:
                    monitor.stream_inbound_time[chunk.tp] = now
            yield chunks


def install(consumer: Any, topics: Collection[str], *, max_chunks: int = 4) -> InputBatches:
    """Take ``topics``' records out of ``consumer``'s fetches (a faust ``Consumer``, before it starts).

    Raises ``RuntimeError`` when the consumer lacks the Faust internals relied on.
    """
    app = getattr(consumer, "app", None)
    if not hasattr(consumer, "_wait_next_records") or not hasattr(app, "consumer_generation_id"):
        raise RuntimeError("this faust-streaming consumer lacks _wait_next_records or app.consumer_generation_id")
    inputs = InputBatches(topics, max_chunks, app)
    faust_wait_next_records = consumer._wait_next_records
    wanted = inputs.topics

    async def wait_next_records(timeout: float) -> tuple[Any, Any]:
        inputs.fetching = True
        try:
            records, active_partitions = await faust_wait_next_records(timeout)
        finally:
            inputs.fetching = False
        if records:
            generation = app.consumer_generation_id
            for tp in [tp for tp in records if tp.topic in wanted]:
                fetched = records.pop(tp)
                if fetched:
                    await inputs.put(Chunk(tp, generation, fetched))
        return records, active_partitions

    consumer._wait_next_records = wait_next_records
    return inputs
