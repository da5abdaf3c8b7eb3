"""Make an ``OffsetLedger`` the authority for what a Faust consumer commits on the input topics.

faust-streaming has no public hook for this: ``install`` wraps the consumer's
``_filter_tps_with_pending_acks`` (which partitions a commit round looks at:
Faust's, plus the given topics' partitions the ledger owns, whose records never
pass through Faust's acks — ``streams.input_batches``) and
``_filter_committable_offsets`` (the step that turns acks into offsets to
commit) so that, for the given topics, the offset committed is the ledger's
``committable`` one, and any Faust ack bookkeeping for them (acked lists, gap
intervals) is dropped each round.  Other topics (alerts, control,
changelogs) keep Faust's behaviour.  Tested against faust-streaming 0.15
(``tests/unit/test_offsets.py`` fails loudly if the internals move).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
import logging
from typing import Any

from streams.offsets import OffsetLedger

__all__ = ["commit_processed", "install"]

log = logging.getLogger(__name__)

_REQUIRED = ("_filter_tps_with_pending_acks", "_filter_committable_offsets", "_should_commit", "_acked", "_acked_index", "_gap")


def install(consumer: Any, ledger: OffsetLedger, topics: Collection[str]) -> None:
    """Route commits of ``topics``' partitions on ``consumer`` through ``ledger``.

    Raises ``RuntimeError`` when the consumer lacks the Faust internals relied on.
    """
    missing = [name for name in _REQUIRED if not hasattr(consumer, name)]
    if missing:
        raise RuntimeError(f"this faust-streaming consumer lacks {missing}: the commit guard cannot be installed")
    faust_filter = consumer._filter_committable_offsets
    faust_pending = consumer._filter_tps_with_pending_acks

    def filter_tps_with_pending_acks(wanted: Any = None) -> Iterator[Any]:
        pending = list(faust_pending(wanted))
        yield from pending
        for tp in ledger.owned():
            if tp.topic in topics and tp not in pending and (wanted is None or tp in wanted or tp.topic in wanted):
                yield tp

    def filter_committable_offsets(tps: Iterable[Any]) -> dict[Any, int]:
        tps = list(tps)
        offsets: dict[Any, int] = faust_filter([tp for tp in tps if tp.topic not in topics])
        for tp in tps:
            if tp.topic not in topics:
                continue
            consumer._acked[tp].clear()
            consumer._acked_index[tp].clear()
            consumer._gap.pop(tp, None)
            offset = ledger.committable(tp)
            if offset is not None and consumer._should_commit(tp, offset):
                offsets[tp] = offset
        return offsets

    consumer._filter_committable_offsets = filter_committable_offsets
    consumer._filter_tps_with_pending_acks = filter_tps_with_pending_acks


async def commit_processed(consumer: Any, ledger: OffsetLedger, tps: Iterable[Any]) -> bool:
    """Commit the ledger's offsets of ``tps`` now (when partitions are revoked, before they move).

    Faust drops its own bookkeeping of revoked partitions before the revoke
    signal reaches the app, so this commits through the consumer's low-level
    ``_commit``.  Returns whether a commit was made and accepted.
    """
    offsets = {tp: o for tp in tps if (o := ledger.committable(tp)) is not None}
    if not offsets:
        return False
    log.info("committing processed offsets of revoked partitions: %s", {f"{tp.topic}[{tp.partition}]": o for tp, o in offsets.items()})
    return bool(await consumer._commit(offsets))
