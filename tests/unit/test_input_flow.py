"""Consumer-loop changes on the real faust-streaming consumer: eager delivery and the short fetch wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP

from streams import eager_delivery, input_flow
from streams.app import Service
from streams.settings import Settings

IN = TP("inference.events", 0)
OTHER = TP("inferwatch.alerts", 0)


@pytest.fixture()
def consumer() -> Any:
    """A worker's consumer: ``Service`` has installed both changes on it."""
    service = Service(Settings(), {"inference.events": 1, "gpu.metrics": 1, "inferwatch.alerts": 1})
    return service.app.consumer


def _run(consumer: Any, coro: Any) -> Any:
    """Run on the consumer's own loop (mode's ``wait_first`` schedules its waiters there)."""
    return consumer.loop.run_until_complete(coro)


# -- eager delivery -----------------------------------------------------------------------
def test_a_callback_that_does_not_suspend_completes_without_tasks(consumer: Any) -> None:
    async def callback() -> str:
        return "delivered"

    async def run() -> tuple[Any, int]:
        before = len(asyncio.all_tasks())
        flow = asyncio.Event()
        result = await consumer.wait_first(callback(), flow.wait())
        return result, len(asyncio.all_tasks()) - before

    result, new_tasks = _run(consumer, run())
    assert result.results == ["delivered"] and not result.stopped
    assert new_tasks == 0


def test_a_callback_that_suspends_is_resumed_to_completion(consumer: Any) -> None:
    async def callback(room: asyncio.Event) -> str:
        await room.wait()  # a full stream queue
        return "delivered"

    async def run() -> Any:
        room, flow = asyncio.Event(), asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, room.set)
        return await consumer.wait_first(callback(room), flow.wait())

    assert _run(consumer, run()).results == ["delivered"]


def test_a_suspended_callback_is_cancelled_when_the_flow_is_suspended(consumer: Any) -> None:
    cancelled = []

    async def callback(room: asyncio.Event) -> None:
        try:
            await room.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def run() -> Any:
        room, flow = asyncio.Event(), asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, flow.set)  # a rebalance suspends the flow
        result = await consumer.wait_first(callback(room), flow.wait())
        await asyncio.sleep(0)  # let the cancellation land
        return result

    result = _run(consumer, run())
    assert result.results == [True]  # only the flow-suspension waiter won
    assert cancelled == [True]


def test_an_error_in_the_callback_propagates(consumer: Any) -> None:
    async def callback() -> None:
        raise ValueError("bad message")

    async def run() -> None:
        await consumer.wait_first(callback(), asyncio.Event().wait())

    with pytest.raises(ValueError, match="bad message"):
        _run(consumer, run())


# -- the fetch long poll is short ------------------------------------------------------
def test_the_kafka_consumer_is_created_with_the_short_fetch_wait(consumer: Any) -> None:
    async def create() -> Any:  # aiokafka creates its consumer inside a running loop
        return consumer._thread._create_worker_consumer(consumer.transport)

    created = _run(consumer, create())
    assert created._fetch_max_wait_ms == input_flow.DEFAULT_FETCH_MAX_WAIT_MS


def test_installing_refuses_a_consumer_without_the_internals() -> None:
    with pytest.raises(RuntimeError, match="_create_worker_consumer"):
        input_flow.install(object())
    with pytest.raises(AttributeError):
        eager_delivery.install(object())
