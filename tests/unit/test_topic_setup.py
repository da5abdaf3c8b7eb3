"""Topic set-up before a worker starts: a topic created a moment ago may be described with no partitions yet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams import worker
from streams.settings import Settings


class _Admin:
    """Stands in for aiokafka's admin client: topics exist; the first ``empty_rounds`` descriptions list no partitions."""

    def __init__(self, empty_rounds: int) -> None:
        self.empty_rounds, self.described = empty_rounds, 0

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self.described += 1
        parts = [] if self.described <= self.empty_rounds else [{"partition": 0}, {"partition": 1}]
        return [{"topic": t, "partitions": parts} for t in topics]


def test_partition_counts_ask_again_until_the_metadata_shows_partitions() -> None:
    admin = _Admin(empty_rounds=2)
    counts = asyncio.run(worker._partition_counts(admin, ["a", "b"]))  # type: ignore[arg-type]
    assert counts == {"a": 2, "b": 2} and admin.described == 3


def test_partition_counts_name_the_topics_that_never_get_partitions() -> None:
    with pytest.raises(RuntimeError, match="without partitions after 0s: a, b"):
        asyncio.run(worker._partition_counts(_Admin(empty_rounds=10**6), ["a", "b"], timeout=0.0))  # type: ignore[arg-type]


def test_ensure_topics_creates_the_missing_ones_and_waits_for_their_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []

    class Admin(_Admin):
        def __init__(self, bootstrap_servers: str) -> None:
            super().__init__(empty_rounds=1)

        async def start(self) -> None: ...
        async def close(self) -> None: ...

        async def list_topics(self) -> list[str]:
            return ["inference.events"]

        async def create_topics(self, topics: list[Any]) -> None:
            created.extend(t.name for t in topics)

    monkeypatch.setattr(worker, "AIOKafkaAdminClient", Admin)
    counts = asyncio.run(worker.ensure_topics(Settings(), partitions=2))
    assert set(created) == {"gpu.metrics", "inferwatch.alerts", "inferwatch.deadletter", "inferwatch.control"}
    assert set(counts) == {"inference.events", *created} and set(counts.values()) == {2}
