"""From one consumed Kafka message to records or a dead letter — never an exception.

``Intake`` wraps a topic's decoder with the message's coordinates so that the
Faust agents, the CLI and the tests share the same rule: a message yields its
records, or exactly one ``DeadLetter`` holding the original bytes and a reason;
besides, earlier messages held for a later one (KServe halves) are dead-lettered
when that one shows they cannot be used: a counterpart that cannot be joined
with it, or a half dropped unjoined while it was decoded; ``Intake.expired`` gives
those that waited too long when no message comes (a worker's timer asks).
``waiting`` (or ``waiting_changes``) / ``forget`` / ``resume`` let a worker persist the held messages and
restore them on the partition's next owner (``streams.waiting_halves``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from streams.deadletter import dead_letter
from streams.decoding.kserve import Released
from streams.errors import Rejected
from streams.records import DeadLetter

__all__ = ["Consumed", "Decoder", "Intake", "IntakeResult", "message_headers"]

log = logging.getLogger(__name__)
R = TypeVar("R")


def message_headers(raw: Any) -> list[tuple[str, bytes | None]]:
    """A consumed message's headers (a list of pairs or a dict) as ``(name, value)`` pairs; a null
    value stays ``None`` (not ``b"None"``)."""
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return [(k, v if v is None or isinstance(v, bytes) else str(v).encode()) for k, v in items]


class Decoder(Protocol[R]):
    """What ``InferenceDecoder`` and ``GpuDecoder`` provide."""

    def decode(
        self, raw: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None = None, timestamp: float = 0.0, source: object = None
    ) -> list[R]: ...

    def take_released(self) -> list[Released]: ...

    def expire(self) -> None: ...

    def waiting(self) -> list[object]: ...

    def track(self) -> None: ...

    def take_changes(self) -> list[tuple[object, bool]]: ...

    def forget(self, which: Callable[[object], bool]) -> int: ...


@dataclass(frozen=True, slots=True)
class Consumed:
    """A consumed message as the ``Intake`` saw it: what a dead letter of it, or decoding it again
    (a waiting KServe half restored by a worker), needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    timestamp: float = 0.0  # the broker's, epoch seconds (0: unknown)


@dataclass(slots=True)
class IntakeResult(Generic[R]):
    """Records decoded from one message, or the dead letter it became; and the dead letters of
    earlier messages held for it (KServe halves) that it showed cannot be used."""

    records: list[R]
    dead: DeadLetter | None = None
    earlier: list[DeadLetter] = field(default_factory=list)  # earlier messages dead-lettered while this one was decoded


@dataclass
class Intake(Generic[R]):
    """Decode messages of one topic; counts records and dead letters by reason."""

    decoder: Decoder[R]
    decoded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def process(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        timestamp: float = 0.0,
    ) -> IntakeResult[R]:
        """Decode one message; a failure of any kind becomes a dead letter, logged with its coordinates."""
        consumed = Consumed(topic, partition, offset, key, value, headers, timestamp)
        try:
            records = self.decoder.decode(value, headers, timestamp, consumed)
        except Rejected as exc:
            reason = exc
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not kill the worker either
            log.exception("decoder failed on %s[%d]@%d", topic, partition, offset)
            reason = Rejected("decoder_error", f"{type(exc).__name__}: {exc}")
        else:
            self.decoded += len(records)
            return IntakeResult(records, None, self._released(consumed))
        self.rejected[reason.reason] += 1
        log.warning("dead-lettering %s[%d]@%d: %s: %s", topic, partition, offset, reason.reason, reason.detail)
        letter = dead_letter(reason, topic=topic, partition=partition, offset=offset, key=key, value=value, headers=headers)
        return IntakeResult([], letter, self._released(consumed))

    def expired(self) -> list[DeadLetter]:
        """Dead letters of the messages the decoder lets go for having waited too long (a worker's timer
        asks, so they go on time when no message comes to let them go)."""
        self.decoder.expire()
        return self._released()

    def waiting(self) -> list[Consumed]:
        """The messages held by the decoder for a later one (KServe halves), oldest first."""
        return [m for m in self.decoder.waiting() if isinstance(m, Consumed)]

    def track_waiting(self) -> None:
        """Start recording which held messages start or stop being held, for :meth:`waiting_changes`
        (which must then be called regularly: the record grows until it is taken)."""
        self.decoder.track()

    def waiting_changes(self) -> list[tuple[Consumed, bool]]:
        """The messages that started (``True``) or stopped (``False``) being held since the last call,
        in that order (joined, let go or forgotten: stopped); replayed over :meth:`waiting` as it was
        then, they give :meth:`waiting` now."""
        return [(m, held) for m, held in self.decoder.take_changes() if isinstance(m, Consumed)]

    def forget(self, partitions: Collection[tuple[str, int]]) -> int:
        """Let the held messages of these ``(topic, partition)`` go silently: their next owner restores
        them (``streams.waiting_halves``).  Returns how many."""
        chosen = set(partitions)
        return self.decoder.forget(lambda m: isinstance(m, Consumed) and (m.topic, m.partition) in chosen)

    def resume(self, message: Consumed) -> IntakeResult[R]:
        """Decode a held message again (restored after a restart or rebalance), as when it was consumed."""
        m = message
        return self.process(topic=m.topic, partition=m.partition, offset=m.offset, key=m.key, value=m.value,
                            headers=m.headers, timestamp=m.timestamp)

    def _released(self, now: Consumed | None = None) -> list[DeadLetter]:
        """Dead letters of the earlier messages the decoder let go while ``now`` was decoded (``None``:
        since the last message, by an expiry check such as a worker's timer)."""
        where, letters = (_where(now) if now is not None else None), []
        for released in self.decoder.take_released():
            earlier = released.source
            if not isinstance(earlier, Consumed):
                continue
            reason = Rejected(released.reason, released.detail(where))
            self.rejected[reason.reason] += 1
            log.warning("dead-lettering %s: %s: %s", _where(earlier), reason.reason, reason.detail)
            letters.append(dead_letter(reason, topic=earlier.topic, partition=earlier.partition, offset=earlier.offset,
                                       key=earlier.key, value=earlier.value, headers=earlier.headers))
        return letters


def _where(message: Consumed) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"
