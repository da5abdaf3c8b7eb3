"""Faust tables as the engine sees them, and writes that work from a batch.

Faust only lets a table be assigned inside per-event iteration, because it
takes the changelog partition from the current event.  The agents process
batches of records (``streams.input_batches``), so ``put`` writes the store and sends the changelog
record to an explicit partition: the source partition for co-partitioned
tables, 0 for the single-partition global tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["DecodedView", "delete", "put"]

V = TypeVar("V")


def put(table: Any, key: str, value: bytes, partition: int) -> None:
    """Set ``table[key] = value`` and log it to the changelog's ``partition``."""
    table.data[key] = value
    table.send_changelog(partition, key, value)


def delete(table: Any, key: str, partition: int) -> None:
    """Remove ``table[key]`` (if there) and log a tombstone to the changelog's ``partition``."""
    if key in table.data:
        del table.data[key]
        table.send_changelog(partition, key, None)


class DecodedView(Mapping[str, V], Generic[V]):
    """Read-only view of a bytes-valued table, decoding values on access (cached per bytes object)."""

    def __init__(self, table: Any, decode: Callable[[bytes], V]) -> None:
        self._table = table
        self._decode = decode
        self._cache: dict[str, tuple[bytes, V]] = {}

    def __getitem__(self, key: str) -> V:
        raw = self._table.data[key]
        hit = self._cache.get(key)
        if hit is not None and hit[0] is raw:
            return hit[1]
        value = self._decode(raw)
        self._cache[key] = (raw, value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._table.data.keys()))

    def __len__(self) -> int:
        return len(self._table.data)
