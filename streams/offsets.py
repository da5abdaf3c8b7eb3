"""Which input offsets this worker has processed, so no message is skipped and none is committed early.

faust-streaming acks a message when the stream hands it on (before the agent's
batch is processed), skips-and-acks messages fetched under an older group
generation, and treats offsets it never saw as a "gap" to commit past.  Around a
rebalance any of these can commit an offset whose message no worker processed,
so the input records bypass Faust's acks altogether (``streams.input_batches``)
and the ``OffsetLedger`` is the only account of them, per input partition owned:

* ``admit(tp, offset)`` says whether a consumed message is the next one
  (``NEXT``), one already processed (``SEEN``: dropped, it was redelivered) or
  beyond a hole (``HOLE``: dropped; the caller either seeks back to
  ``expected(tp)`` and calls ``start_seek`` — until that message arrives, or
  ``SEEK_PATIENCE`` seconds pass, later holes are stale messages — or, when the hole holds no records —
  offsets taken by transaction markers or compaction — calls ``accept_hole``);
* ``done(tickets)`` marks the admitted messages of a batch processed (their
  effect is in the detector state in memory);
* ``persist(tp)`` says the state of ``tp`` as processed so far is written to the
  changelog;
* ``committable(tp)`` is the only offset the consumer may commit for ``tp``:
  the next one after everything processed *and persisted* in this assignment,
  so a successor restoring the state never resumes past it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any

__all__ = ["SEEK_PATIENCE", "Admission", "OffsetLedger", "Ticket"]

#: Seconds after a seek back during which messages beyond the hole count as stale.
SEEK_PATIENCE = 30.0


class Admission(enum.Enum):
    NEXT = "next"
    SEEN = "seen"
    HOLE = "hole"


@dataclasses.dataclass(slots=True)
class _Partition:
    epoch: int
    admitted: int | None  # next offset expected from the consumer (None: take the first one)
    processed: int | None  # next offset after everything processed (None: nothing yet)
    persisted: int | None = None  # ``processed`` when the state was last written whole
    sought_at: float | None = None  # when the consumer was sent back to ``admitted`` (monotonic)
    resumed: int | None = None  # the committed offset this assignment resumed at (None: no commit yet)


@dataclasses.dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted message: processed once ``done`` is called with it (if its partition is still owned)."""

    tp: Any
    epoch: int
    offset: int


class OffsetLedger:
    """Per owned input partition, the offsets admitted and processed in this assignment."""

    def __init__(self) -> None:
        self._parts: dict[Any, _Partition] = {}
        self._epoch = 0

    def assign(self, tp: Any, committed: int | None) -> None:
        """Start owning ``tp``: the consumer resumes at ``committed`` (None: no commit yet)."""
        self._epoch += 1
        self._parts[tp] = _Partition(self._epoch, committed, None, resumed=committed)

    def revoke(self, tps: Iterable[Any]) -> None:
        """Stop owning ``tps``; batches admitted before are no longer marked processed."""
        for tp in tps:
            self._parts.pop(tp, None)

    def owned(self) -> list[Any]:
        """The partitions owned now."""
        return list(self._parts)

    def owns(self, tp: Any) -> bool:
        return tp in self._parts

    def resumed_at(self, tp: Any) -> int | None:
        """The committed offset ``tp``'s assignment resumed at (None: not owned, or no commit yet):
        messages before it were processed and persisted by an earlier owner."""
        part = self._parts.get(tp)
        return part.resumed if part else None

    def processed(self, tp: Any) -> int | None:
        """The next offset of ``tp`` after everything processed in this assignment (None: not owned,
        or nothing processed yet)."""
        part = self._parts.get(tp)
        return part.processed if part else None

    def expected(self, tp: Any) -> int | None:
        """The offset the next admitted message of ``tp`` must have."""
        part = self._parts.get(tp)
        return part.admitted if part else None

    def admit(self, tp: Any, offset: int) -> tuple[Admission, Ticket | None]:
        """Judge the consumed message at ``offset``; ``NEXT`` comes with a ticket for ``done``.

        ``tp`` must be owned (``assign`` first).
        """
        part = self._parts[tp]
        if part.admitted is None or offset == part.admitted:
            part.admitted = offset + 1
            part.sought_at = None
            return Admission.NEXT, Ticket(tp, part.epoch, offset)
        if offset < part.admitted:
            return Admission.SEEN, None
        return Admission.HOLE, None

    def start_seek(self, tp: Any, now: float) -> None:
        """The consumer was just sent back to ``expected(tp)``."""
        self._parts[tp].sought_at = now

    def is_seeking(self, tp: Any, now: float) -> bool:
        """Whether a seek back is under way (started less than ``SEEK_PATIENCE`` seconds ago)."""
        sought_at = self._parts[tp].sought_at
        return sought_at is not None and now - sought_at < SEEK_PATIENCE

    def accept_hole(self, tp: Any, offset: int) -> None:
        """The offsets from ``expected(tp)`` up to ``offset`` hold no records: ``offset`` is the next one."""
        part = self._parts[tp]
        if part.processed is not None and part.processed == part.admitted:
            part.processed = offset
        part.admitted = offset
        part.sought_at = None

    def done(self, tickets: Iterable[Ticket]) -> None:
        """Mark admitted messages processed (tickets from an earlier assignment are ignored)."""
        for t in tickets:
            part = self._parts.get(t.tp)
            if part is not None and part.epoch == t.epoch and (part.processed is None or t.offset >= part.processed):
                part.processed = t.offset + 1

    def current(self, ticket: Ticket) -> bool:
        """Whether ``ticket``'s partition is still owned in the assignment that admitted it."""
        part = self._parts.get(ticket.tp)
        return part is not None and part.epoch == ticket.epoch

    def persist(self, tp: Any) -> None:
        """The state of ``tp`` is written as far as processed: that far may be committed (``tp`` owned)."""
        part = self._parts[tp]
        part.persisted = part.processed

    def committable(self, tp: Any) -> int | None:
        """The offset the consumer may commit for ``tp``, or None (nothing persisted in this assignment)."""
        part = self._parts.get(tp)
        return part.persisted if part else None
