"""Ask the broker directly: committed offsets of a group, and where the first record at or after an offset is."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["OffsetProbe", "committed_offsets"]


class OffsetProbe:
    """Finds the first record at or after an offset with its own group-less consumer (nothing committed).

    The consumer starts on first use and is reused; ``close`` stops it.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def first_offset_from(self, topic: str, partition: int, offset: int, timeout: float = 10.0) -> int | None:
        """The offset of the first record of ``topic[partition]`` at or after ``offset``.

        None when there is none yet (the end of the log) or none could be read in ``timeout`` seconds.
        """
        tp = TopicPartition(topic, partition)
        async with self._lock:
            if self._consumer is None:
                consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
                await consumer.start()
                self._consumer = consumer
            self._consumer.assign([tp])
            self._consumer.seek(tp, offset)
            batches = await self._consumer.getmany(tp, timeout_ms=int(timeout * 1000), max_records=1)
        records: list[Any] = batches.get(tp, [])
        return records[0].offset if records else None

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def committed_offsets(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int | None]:
    """The offsets ``group`` has committed for ``tps`` (None where it has committed none)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp: (meta.offset if (meta := found.get(tp)) is not None and meta.offset >= 0 else None) for tp in tps}
