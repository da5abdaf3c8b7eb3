"""What an agent may process from its input partitions, record by record (rules: ``streams.offsets``).

``InputGate`` owns the worker's ``OffsetLedger`` and installs it as the
authority for what the Faust consumer commits on the input topics.  ``admit``
is the synchronous fast path; only a message beyond a hole needs
``fill_hole`` (a broker probe, perhaps a seek back).  ``assign`` / ``revoke``
follow the consumer group.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable
from typing import Any, Literal

from streams import commit_guard
from streams.kafka_probe import OffsetProbe, committed_offsets
from streams.metrics import Metrics
from streams.offsets import Admission, OffsetLedger, Ticket

__all__ = ["InputGate"]

log = logging.getLogger(__name__)


class InputGate:
    """The input topics' offsets on one worker: admission, holes, assignment and what is committed."""

    def __init__(self, app: Any, bootstrap: str, group: str, topics: Collection[str], metrics: Metrics) -> None:
        self.app, self.bootstrap, self.group, self.topics, self.metrics = app, bootstrap, group, set(topics), metrics
        self.ledger = OffsetLedger()
        self.probe = OffsetProbe(bootstrap)
        commit_guard.install(app.consumer, self.ledger, self.topics)

    def admit(self, tp: Any, offset: int, generation_id: int) -> Ticket | Literal[Admission.HOLE] | None:
        """A ticket when ``offset`` is the next one of ``tp``; ``Admission.HOLE`` when offsets before it are
        missing (``fill_hole`` decides); else None (dropped: redelivered, or fetched in an older consumer
        generation ``generation_id``, before a rebalance)."""
        ledger = self.ledger
        if not ledger.owns(tp) or generation_id != self.app.consumer_generation_id:
            return None  # fetched before a rebalance: its owner now reads it from the committed offset
        verdict, ticket = ledger.admit(tp, offset)
        if verdict is Admission.NEXT:
            return ticket
        if verdict is Admission.SEEN:
            self.metrics.redelivered.labels(tp.topic).inc()
            return None
        return Admission.HOLE

    async def fill_hole(self, tp: Any, offset: int) -> Ticket | None:
        """``offset`` of ``tp`` lies beyond a hole: a ticket when the hole holds no records, else None (dropped).

        At a real hole (records the consumer skipped) the consumer is sent back to
        the first missing offset, unless a seek back is already under way.
        """
        ledger = self.ledger
        now = time.monotonic()
        if ledger.is_seeking(tp, now):
            return None  # fetched before the seek back
        expected = ledger.expected(tp)
        assert expected is not None
        first = await self.probe.first_offset_from(tp.topic, tp.partition, expected)
        if first is not None and first >= offset:
            log.info("%s offsets %d..%d hold no records (transaction markers or compaction)", tp, expected, offset - 1)
            ledger.accept_hole(tp, offset)
            return ledger.admit(tp, offset)[1]
        log.warning("consumer skipped %s offsets %d..%d; seeking back to %d", tp, expected, offset - 1, expected)
        self.metrics.refetched.labels(tp.topic).inc()
        ledger.start_seek(tp, now)
        await self.app.consumer.seek_wait({tp: expected})  # runs in the consumer thread (seek does not)
        return None

    def update_lag(self) -> int:
        """Set the lag gauges; returns the largest lag over assigned input partitions."""
        worst = 0
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic not in self.topics:
                continue
            high = consumer.highwater(tp) or 0
            done = self.ledger.expected(tp) or 0  # the committed offset until a message is admitted
            lag = max(0, high - done)
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
            worst = max(worst, lag)
        return worst

    async def assign(self, assigned: Iterable[Any]) -> None:
        """Own the input partitions among ``assigned``, each resuming at the group's committed offset."""
        inputs = [tp for tp in assigned if tp.topic in self.topics]
        committed = await committed_offsets(self.bootstrap, self.group, inputs) if inputs else {}
        for tp in inputs:
            self.ledger.assign(tp, committed[tp])
        log.info("assigned input partitions (resuming at committed offsets): %s",
                 {f"{tp.topic}[{tp.partition}]": committed[tp] for tp in inputs})

    async def revoke(self, revoked: Iterable[Any]) -> None:
        """Commit ``revoked`` as far as processed and persisted, then stop owning them.

        The caller has written their state; the producer is flushed first so it lands before the offsets.
        """
        revoked = list(revoked)
        try:
            await self.app.producer.flush()
            await commit_guard.commit_processed(self.app.consumer, self.ledger, revoked)
        except Exception as exc:  # noqa: BLE001 - the next owner then reprocesses from the last commit
            log.warning("commit on revocation failed: %s", exc)
        self.ledger.revoke(revoked)
