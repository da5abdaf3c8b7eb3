"""A worker's waiting KServe halves, kept in a changelog table so that neither a crash nor a
rebalance loses one.

A KServe half waits in the worker's memory (``KServeJoiner``) for its counterpart, but
its message's offset is committed once its partition's state is persisted.  So before a
partition is persisted, ``save`` writes what changed among the halves waiting from it to
a table co-partitioned with the inference topic (one key per half,
``"<partition>:<offset>"``, holding its message as consumed; a tombstone once it is joined
or let go), and the partition's next owner ``restore``s them: each message is decoded
again, as when it was consumed.  One at or beyond the offset the owner resumed at is not:
the owner reads it again anyway.  A restored half waits ``INFERWATCH_KSERVE_JOIN_TTL_SECONDS``
anew.  ``release`` (on revocation) saves, then lets the revoked partitions' halves go from
memory silently.

A partition is restored once its owner's ledger holds it and Faust has resumed fetching
it, which Faust does only after the table's changelog is recovered.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import msgspec

from streams.intake import Consumed, Intake, IntakeResult
from streams.metrics import Metrics
from streams.offsets import OffsetLedger
from streams.tables import delete, put

__all__ = ["WaitingHalves", "decode_message", "encode_message", "paused_partitions"]

log = logging.getLogger(__name__)
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Consumed)


def encode_message(message: Consumed) -> bytes:
    """A held message as a table value."""
    return _ENCODER.encode(message)


def decode_message(raw: bytes) -> Consumed:
    """The held message :func:`encode_message` wrote."""
    return _DECODER.decode(raw)


def paused_partitions(consumer: Any) -> Collection[Any]:
    """The partitions Faust's consumer holds paused (all assigned ones until their tables are recovered).

    Raises ``RuntimeError`` when the consumer lacks the faust-streaming internal this relies on.
    """
    paused = getattr(consumer, "_paused_partitions", None)
    if paused is None:
        raise RuntimeError("this faust-streaming consumer has no _paused_partitions: waiting KServe halves cannot be restored safely")
    return paused


def _key(message: Consumed) -> str:
    return f"{message.partition}:{message.offset}"


class WaitingHalves:
    """The waiting KServe halves of one worker's inference partitions, in ``table``."""

    def __init__(self, table: Any, intake: Intake[Any], ledger: OffsetLedger, consumer: Any, topic: str, metrics: Metrics) -> None:
        self.table, self.intake, self.ledger, self.consumer, self.topic, self.metrics = table, intake, ledger, consumer, topic, metrics
        self._saved: dict[Any, set[str]] = {}  # restored partitions -> their keys in the table
        paused_partitions(consumer)  # fail at start-up, not at the first restore, if Faust's internals moved

    def _ready(self) -> list[Any]:
        """Owned inference partitions not yet restored whose table Faust has recovered."""
        paused = paused_partitions(self.consumer)
        return [tp for tp in self.ledger.owned() if tp.topic == self.topic and tp not in self._saved and tp not in paused]

    def restore(self) -> list[tuple[Consumed, IntakeResult[Any]]]:
        """Decode again the halves persisted for the partitions ready to restore, oldest first per
        partition: each message with what decoding it gave (records of a pair it completes, dead letters)."""
        out: list[tuple[Consumed, IntakeResult[Any]]] = []
        for tp in self._ready():
            prefix = f"{tp.partition}:"
            keys = [k for k in self.table.data if isinstance(k, str) and k.startswith(prefix)]
            self._saved[tp] = set(keys)  # in the table: save tombstones those no longer waiting
            resumed = self.ledger.resumed_at(tp)
            for message in sorted(self._read(keys), key=lambda m: m.offset):
                if resumed is None or message.offset >= resumed:
                    continue  # not committed: the owner reads it again
                out.append((message, self.intake.resume(message)))
                self.metrics.state_restored.labels("kserve_half").inc()
        return out

    def _read(self, keys: list[str]) -> list[Consumed]:
        """The held messages under ``keys``; a value that is not one is logged and skipped (save removes it)."""
        out = []
        for key in keys:
            try:
                out.append(decode_message(self.table.data[key]))
            except (msgspec.DecodeError, TypeError) as exc:
                log.error("skipping key %r of the waiting KServe halves: not a held message (%s)", key, exc)
        return out

    def save(self) -> None:
        """Write to the table what changed among the restored partitions' waiting halves (call before
        persisting a partition: its committed offset then never passes a half that is not saved)."""
        now: dict[Any, dict[str, Consumed]] = {tp: {} for tp in self._saved}
        restored = {(tp.topic, tp.partition): tp for tp in self._saved}
        for message in self.intake.waiting():
            tp = restored.get((message.topic, message.partition))
            if tp is not None:
                now[tp][_key(message)] = message
        for tp, current in now.items():
            saved = self._saved[tp]
            for key in current.keys() - saved:
                put(self.table, key, encode_message(current[key]), tp.partition)
            for key in saved - current.keys():
                delete(self.table, key, tp.partition)
            self._saved[tp] = set(current)

    def release(self, revoked: Collection[Any]) -> None:
        """Before ``revoked`` go to another worker: save, then let their halves go from memory."""
        self.save()
        mine = [tp for tp in revoked if tp.topic == self.topic]
        self.intake.forget([(tp.topic, tp.partition) for tp in mine])
        for tp in mine:
            self._saved.pop(tp, None)
