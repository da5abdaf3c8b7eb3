"""Deliver each consumed message to its streams without four asyncio tasks per message.

faust-streaming's fetch loop (``Consumer._drain_messages``) hands every message
to the conductor with ``await self.wait_first(callback(message),
self.suspend_flow.wait())``: mode's ``wait_first`` wraps both coroutines, plus
the consumer's ``stopped`` and ``crashed`` events, in tasks, waits for the
first, and cancels the rest — ~37 µs per message, more than reading and
decoding it.  The callback almost never suspends (it puts the message on a
stream queue that has room), so ``install`` gives the consumer a ``wait_first``
that, for that two-coroutine call, first runs the callback eagerly (what Python
3.12's eager tasks do, for this one call): if it completes without suspending, its
result is returned at once; if it suspends (a full queue, flow control), it is
resumed under mode's own ``wait_first``, racing the flow suspension and the
consumer's stop exactly as before.  Every other ``wait_first`` call is mode's.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

from mode.services import WaitResults

__all__ = ["install"]


class _Resumed:
    """Awaitable that continues a coroutine already run up to its first suspension (``pending``)."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - cancellation and errors go into the coroutine, as a task would
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def install(consumer: Any) -> None:
    """Give ``consumer`` (a faust ``Consumer``) the eager ``wait_first`` described above."""
    mode_wait_first = consumer.wait_first
    stopped, crashed = consumer._stopped, consumer._crashed

    async def wait_first(*coros: Any, timeout: Any = None) -> WaitResults:
        if len(coros) != 2 or timeout is not None or stopped.is_set() or crashed.is_set() \
                or not all(inspect.iscoroutine(c) for c in coros):
            return await mode_wait_first(*coros, timeout=timeout)
        first, other = coros
        try:
            pending = first.send(None)
        except StopIteration as done:
            other.close()
            return WaitResults([first], [done.value], False)
        except BaseException:
            other.close()
            raise
        return await mode_wait_first(_Resumed(first, pending), other)

    consumer.wait_first = wait_first
