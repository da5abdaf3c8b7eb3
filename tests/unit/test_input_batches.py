"""Input records taken out of the real faust-streaming consumer's fetches and batched for the agents."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams import input_batches
from streams.app import Service
from streams.input_batches import Chunk, InputBatches
from streams.settings import Settings

IN0, IN1 = TP("inference.events", 0), TP("inference.events", 1)
GPU = TP("gpu.metrics", 0)
OTHER = TP("inferwatch.alerts", 0)


def _records(tp: TP, offsets: range) -> list[Any]:
    return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o) for o in offsets]


@pytest.fixture()
def consumer() -> Any:
    """A worker's real Faust consumer, its fetch replaced by ``fetched`` (a list of record maps to return)."""
    service = Service(Settings(), {"inference.events": 2, "gpu.metrics": 1, "inferwatch.alerts": 1})
    consumer = service.app.consumer
    consumer.fetched = []

    async def fetch(timeout: float) -> tuple[Any, Any]:
        return consumer.fetched.pop(0), None

    consumer._wait_next_records = fetch
    return consumer


def test_input_records_leave_the_fetch_as_chunks_and_faust_keeps_the_rest(consumer: Any) -> None:
    inputs = input_batches.install(consumer, {"inference.events", "gpu.metrics"})
    generation = consumer.app.consumer_generation_id
    consumer.fetched.append({IN0: _records(IN0, range(0, 3)), OTHER: _records(OTHER, range(7, 9)), GPU: _records(GPU, range(5, 6)), IN1: []})

    async def run() -> tuple[Any, list[Chunk]]:
        records, _ = await consumer._wait_next_records(1.0)
        queued = [await inputs._queues["inference.events"].get(), await inputs._queues["gpu.metrics"].get()]
        return records, queued

    records, (inference, gpu) = asyncio.run(run())
    assert list(records) == [OTHER] and [r.offset for r in records[OTHER]] == [7, 8]
    assert inference.tp == IN0 and [r.offset for r in inference.records] == [0, 1, 2] and inference.generation_id == generation
    assert gpu.tp == GPU and [r.offset for r in gpu.records] == [5]
    assert inputs.queued("inference.events") == 0  # the empty list of IN1 queued nothing


def test_a_full_queue_holds_up_the_fetch_until_the_agent_takes_a_batch(consumer: Any) -> None:
    inputs = input_batches.install(consumer, {"inference.events"}, max_chunks=1)
    consumer.fetched += [{IN0: _records(IN0, range(0, 2))}, {IN0: _records(IN0, range(2, 4))}]

    async def run() -> tuple[bool, list[int]]:
        await consumer._wait_next_records(1.0)
        second = asyncio.ensure_future(consumer._wait_next_records(1.0))
        await asyncio.sleep(0.05)
        blocked = not second.done()
        batches = inputs.batches("inference.events", max_records=1, within=0.0)
        first = await anext(batches)
        await asyncio.wait_for(second, 1.0)
        return blocked, [r.offset for c in first for r in c.records]

    blocked, taken = asyncio.run(run())
    assert blocked and taken == [0, 1]


def test_the_next_fetch_is_under_way_before_a_batch_is_handed_out(consumer: Any) -> None:
    consumer.fetched.append({IN0: _records(IN0, range(0, 2))})
    in_flight = asyncio.Event()

    async def fetch_loop() -> None:  # Faust's _drain_messages, reduced: fetch, then yield, then fetch again
        await consumer._wait_next_records(1.0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        consumer.fetched.append(None)
        await consumer._wait_next_records(1.0)

    async def blocking_fetch(timeout: float) -> tuple[Any, Any]:
        if consumer.fetched and consumer.fetched[0] is None:
            in_flight.set()
            await asyncio.Event().wait()  # the consumer thread has not answered yet
        return consumer.fetched.pop(0), None

    async def run() -> bool:
        consumer._wait_next_records = blocking_fetch
        fetching = input_batches.install(consumer, {"inference.events"})
        loop = asyncio.ensure_future(fetch_loop())
        batch = await anext(fetching.batches("inference.events", max_records=1, within=0.0))
        out = fetching.fetching and in_flight.is_set() and [r.offset for r in batch[0].records] == [0, 1]
        loop.cancel()
        return out

    assert asyncio.run(run())


def test_a_batch_takes_chunks_until_max_records_or_the_wait_ends() -> None:
    inputs = InputBatches({"inference.events"}, max_chunks=8)

    async def run() -> list[list[int]]:
        for start in (0, 3, 6, 9):
            await inputs.put(Chunk(IN0, 1, _records(IN0, range(start, start + 3))))
        batches = inputs.batches("inference.events", max_records=5, within=0.05)
        got = [await anext(batches), await anext(batches)]  # 3+3 >= 5, then 3+3 again
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, inputs._queues["inference.events"].put_nowait, Chunk(IN1, 1, _records(IN1, range(0, 1))))
        await inputs.put(Chunk(IN0, 1, _records(IN0, range(12, 13))))
        got.append(await anext(batches))  # one record, one more arrives within the wait, then the wait ends
        return [[r.offset for c in batch for r in c.records] for batch in got]

    assert asyncio.run(run()) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 0]]


def test_bad_arguments_and_a_consumer_without_the_internals_are_refused() -> None:
    with pytest.raises(ValueError, match="max_chunks must be >= 1"):
        InputBatches({"inference.events"}, max_chunks=0)
    with pytest.raises(RuntimeError, match="_wait_next_records"):
        input_batches.install(object(), {"inference.events"})
