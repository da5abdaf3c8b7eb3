"""A worker's waiting KServe halves, kept in a changelog table so that neither a crash nor a
rebalance loses one.

A KServe half waits in the worker's memory (``KServeJoiner``) for its counterpart, but
its message's offset is committed once its partition's state is persisted.  So before a
partition is persisted, ``save`` writes what changed among the halves waiting from it to
a table co-partitioned with the inference topic (one key per half,
``"<partition>:<offset>"``, holding its message as consumed), and the partition's next
owner ``restore``s them: each message is decoded again, as when it was consumed.  One at
or beyond the offset the owner resumed at is not: the owner reads it again anyway.  A
restored half waits ``INFERWATCH_KSERVE_JOIN_TTL_SECONDS`` anew.  ``release`` (on
revocation) saves, then lets the revoked partitions' halves go from memory silently.

A half no longer waiting (joined, or let go) is not tombstoned at once: after a crash the
next owner processes again every message since the last commit, its counterpart among
them, and must find it.  Its key is first marked *settled* at the offset processed so far
(the message kept); the next owner restores a settled half only when it resumes before
that offset, and the key is tombstoned once the consumer has committed that far.

A save looks only at the halves that started or stopped waiting since the last one (the
intake records them, :meth:`~streams.intake.Intake.waiting_changes`), so its cost follows the
batch, not how many halves are held; a partition restored since is looked at whole once.

A partition is restored once its owner's ledger holds it and Faust has resumed fetching
it, which Faust does only after the table's changelog is recovered.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import msgspec

from streams.intake import Consumed, Intake, IntakeResult
from streams.metrics import Metrics
from streams.offsets import OffsetLedger
from streams.tables import delete, put

__all__ = ["WaitingHalves", "decode_message", "encode_message", "last_commits", "paused_partitions"]

log = logging.getLogger(__name__)
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Consumed | tuple[int, Consumed])


def encode_message(message: Consumed, settled_at: int | None = None) -> bytes:
    """A held message as a table value: waiting, or settled at offset ``settled_at``."""
    return _ENCODER.encode(message if settled_at is None else (settled_at, message))


def decode_message(raw: bytes) -> tuple[Consumed, int | None]:
    """The held message :func:`encode_message` wrote, and the offset it was settled at (None: waiting)."""
    value = _DECODER.decode(raw)
    return (value, None) if isinstance(value, Consumed) else (value[1], value[0])


def _internal(consumer: Any, name: str, purpose: str) -> Any:
    """``consumer.<name>``, a faust-streaming internal; ``RuntimeError`` naming ``purpose`` when it is missing."""
    value = getattr(consumer, name, None)
    if value is None:
        raise RuntimeError(f"this faust-streaming consumer has no {name}: {purpose}")
    return value


def paused_partitions(consumer: Any) -> Collection[Any]:
    """The partitions Faust's consumer holds paused (all assigned ones until their tables are recovered).

    Raises ``RuntimeError`` when the consumer lacks the faust-streaming internal this relies on.
    """
    return _internal(consumer, "_paused_partitions", "waiting KServe halves cannot be restored safely")


def last_commits(consumer: Any) -> Mapping[Any, int | None]:
    """The offset Faust's consumer last committed, per partition (absent: none in this assignment).

    Raises ``RuntimeError`` when the consumer lacks the faust-streaming internal this relies on.
    """
    return _internal(consumer, "_committed_offset", "settled KServe halves cannot be let go safely")


def _key(message: Consumed) -> str:
    return f"{message.partition}:{message.offset}"


class WaitingHalves:
    """The waiting KServe halves of one worker's inference partitions, in ``table``."""

    def __init__(self, table: Any, intake: Intake[Any], ledger: OffsetLedger, consumer: Any, topic: str, metrics: Metrics) -> None:
        self.table, self.intake, self.ledger, self.consumer, self.topic, self.metrics = table, intake, ledger, consumer, topic, metrics
        self._held: dict[Any, dict[str, Consumed]] = {}  # restored partitions -> their waiting halves in the table
        self._settled: dict[Any, dict[str, int]] = {}  # restored partitions -> their settled halves' keys -> offset
        # The halves waiting in memory, per (topic, partition), as of the last save; and the keys whose
        # halves started or stopped waiting since (what save looks at, not every half held).
        self._waiting: dict[tuple[str, int], dict[str, Consumed]] = {}
        self._touched: dict[tuple[str, int], set[str]] = {}
        self._fresh: set[Any] = set()  # partitions restored since the last save: every key looked at once
        paused_partitions(consumer)  # fail at start-up, not at the first restore, if Faust's internals moved
        last_commits(consumer)
        intake.track_waiting()

    def _ready(self) -> list[Any]:
        """Owned inference partitions not yet restored whose table Faust has recovered."""
        paused = paused_partitions(self.consumer)
        return [tp for tp in self.ledger.owned() if tp.topic == self.topic and tp not in self._held and tp not in paused]

    def restore(self) -> list[tuple[Consumed, IntakeResult[Any]]]:
        """Decode again the halves persisted for the partitions ready to restore, oldest first per
        partition: each message with what decoding it gave (records of a pair it completes, dead letters).

        A half this owner reads again (at or beyond the offset it resumed at), or one settled before
        that offset (its pair's events are in the committed state), is tombstoned instead.
        """
        out: list[tuple[Consumed, IntakeResult[Any]]] = []
        for tp in self._ready():
            held: dict[str, Consumed] = {}
            self._held[tp], self._settled[tp] = held, {}
            self._fresh.add(tp)
            resumed = self.ledger.resumed_at(tp)
            for key, message, settled_at in sorted(self._read(tp), key=lambda found: found[1].offset):
                if resumed is None or message.offset >= resumed or (settled_at is not None and settled_at <= resumed):
                    delete(self.table, key, tp.partition)
                    continue
                if settled_at is not None:
                    put(self.table, key, encode_message(message), tp.partition)  # waits again
                held[key] = message
                out.append((message, self.intake.resume(message)))
                self.metrics.state_restored.labels("kserve_half").inc()
        return out

    def _read(self, tp: Any) -> Iterator[tuple[str, Consumed, int | None]]:
        """``tp``'s held messages in the table with their keys and settled offsets; a value that is
        not one is logged and tombstoned."""
        prefix = f"{tp.partition}:"
        for key in [k for k in self.table.data if isinstance(k, str) and k.startswith(prefix)]:
            try:
                yield (key, *decode_message(self.table.data[key]))
            except (msgspec.DecodeError, TypeError) as exc:
                log.error("removing key %r of the waiting KServe halves: not a held message (%s)", key, exc)
                delete(self.table, key, tp.partition)

    def save(self) -> None:
        """Write to the table what changed among the restored partitions' halves (call before persisting
        a partition: its committed offset then never passes a half not saved): new waiting halves, halves
        no longer waiting marked settled, and tombstones for settled ones the consumer committed past.

        Only the halves that started or stopped waiting since the last save are looked at
        (:meth:`~streams.intake.Intake.waiting_changes`), and every one of a partition restored since.
        """
        for message, waiting in self.intake.waiting_changes():
            where, key = (message.topic, message.partition), _key(message)
            if waiting:
                self._waiting.setdefault(where, {})[key] = message
            else:
                self._waiting.get(where, {}).pop(key, None)
            self._touched.setdefault(where, set()).add(key)
        commits = last_commits(self.consumer)
        for tp, held in self._held.items():
            current = self._waiting.get((tp.topic, tp.partition), {})
            touched = self._touched.get((tp.topic, tp.partition), set())
            if tp in self._fresh:
                touched = touched | current.keys() | held.keys()
            self._write(tp, held, current, touched)
            committed = commits.get(tp)
            settled = self._settled[tp]
            if committed is not None:
                for key in [k for k, at in settled.items() if at <= committed]:
                    delete(self.table, key, tp.partition)
                    del settled[key]
        self._touched.clear()  # a partition not restored yet is looked at whole once it is (``_fresh``)
        self._fresh.clear()

    def _write(self, tp: Any, held: dict[str, Consumed], current: Mapping[str, Consumed], touched: Collection[str]) -> None:
        """Bring ``tp``'s ``held`` halves (those waiting in the table) to ``current`` (those waiting in
        memory) for the ``touched`` keys: a new one is put waiting, one gone is marked settled."""
        settled, at = self._settled[tp], None
        for key in touched:
            if key in current:
                if key not in held:
                    held[key] = current[key]
                    put(self.table, key, encode_message(current[key]), tp.partition)
                    settled.pop(key, None)
            elif key in held:
                at = self._processed(tp) if at is None else at
                put(self.table, key, encode_message(held.pop(key), at), tp.partition)
                settled[key] = at

    def _processed(self, tp: Any) -> int:
        """The next offset of ``tp`` after what is processed: a half settled now is in the state once
        the commit reaches it."""
        processed = self.ledger.processed(tp)
        return processed if processed is not None else self.ledger.resumed_at(tp) or 0

    def release(self, revoked: Collection[Any]) -> None:
        """Before ``revoked`` go to another worker: save, then let their halves go from memory (their
        settled halves stay in the table: the next owner tombstones those it resumes past)."""
        self.save()
        mine = [tp for tp in revoked if tp.topic == self.topic]
        self.intake.forget([(tp.topic, tp.partition) for tp in mine])
        for tp in mine:
            self._held.pop(tp, None)
            self._settled.pop(tp, None)
            self._waiting.pop((tp.topic, tp.partition), None)
