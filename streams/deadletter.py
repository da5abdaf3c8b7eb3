"""Dead-letter records: the original message, unchanged, plus why it was refused.

On the dead-letter topic the value and key are the original bytes and the
original headers are kept; ``inferwatch.*`` headers add the reason code, the
human-readable detail and the source topic, partition and offset (the Kafka
Connect DLQ convention), so a fixed message can be replayed as it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from streams.errors import Rejected
from streams.records import DeadLetter

__all__ = ["HEADER_PREFIX", "dead_letter", "from_kafka", "to_kafka"]

HEADER_PREFIX = "inferwatch."
_META = ("reason", "detail", "topic", "partition", "offset", "received_at")


def dead_letter(
    rejected: Rejected,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    received_at: float | None = None,
) -> DeadLetter:
    """The dead-letter record for a rejected message."""
    return DeadLetter(
        reason=rejected.reason,
        detail=rejected.detail,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value or b"",
        headers=[(k, None if v is None else bytes(v)) for k, v in headers],
        received_at=time.time() if received_at is None else received_at,
    )


def to_kafka(record: DeadLetter) -> tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]:
    """``(key, value, headers)`` to produce to the dead-letter topic."""
    meta = [(HEADER_PREFIX + name, str(getattr(record, name)).encode()) for name in _META]
    return record.key, record.value, [*record.headers, *meta]


def from_kafka(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> DeadLetter:
    """Read a dead-letter message back (``ValueError`` if it lacks the inferwatch headers)."""
    meta = {k[len(HEADER_PREFIX) :]: v.decode() for k, v in headers if k.startswith(HEADER_PREFIX) and v is not None}
    missing = [name for name in _META if name not in meta]
    if missing:
        raise ValueError(f"not an inferwatch dead letter: missing header(s) {', '.join(missing)}")
    return DeadLetter(
        reason=meta["reason"],
        detail=meta["detail"],
        topic=meta["topic"],
        partition=int(meta["partition"]),
        offset=int(meta["offset"]),
        key=key,
        value=value or b"",
        headers=[(k, None if v is None else bytes(v)) for k, v in headers if not k.startswith(HEADER_PREFIX)],
        received_at=float(meta["received_at"]),
    )
