"""From one consumed Kafka message to records or a dead letter — never an exception.

``Intake`` wraps a topic's decoder with the message's coordinates so that the
Faust agents, the CLI and the tests share the same rule: a message yields its
records, or exactly one ``DeadLetter`` holding the original bytes and a reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from streams.deadletter import dead_letter
from streams.errors import Rejected
from streams.records import DeadLetter

__all__ = ["Decoder", "Intake", "IntakeResult"]

log = logging.getLogger(__name__)
R = TypeVar("R")


class Decoder(Protocol[R]):
    """What ``InferenceDecoder`` and ``GpuDecoder`` provide."""

    def decode(self, raw: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None = None, timestamp: float = 0.0) -> list[R]: ...


@dataclass(slots=True)
class IntakeResult(Generic[R]):
    """Records decoded from one message, or the dead letter it became."""

    records: list[R]
    dead: DeadLetter | None = None


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
        try:
            records = self.decoder.decode(value, headers, timestamp)
        except Rejected as exc:
            reason = exc
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not kill the worker either
            log.exception("decoder failed on %s[%d]@%d", topic, partition, offset)
            reason = Rejected("decoder_error", f"{type(exc).__name__}: {exc}")
        else:
            self.decoded += len(records)
            return IntakeResult(records)
        self.rejected[reason.reason] += 1
        log.warning("dead-lettering %s[%d]@%d: %s: %s", topic, partition, offset, reason.reason, reason.detail)
        letter = dead_letter(reason, topic=topic, partition=partition, offset=offset, key=key, value=value, headers=headers)
        return IntakeResult([], letter)
