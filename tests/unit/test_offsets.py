"""The offset ledger and the commit guard that makes it decide what a Faust consumer commits."""

from __future__ import annotations

from typing import Any

import pytest
from faust.types import TP

from streams import commit_guard
from streams.app import Service
from streams.offsets import SEEK_PATIENCE, Admission, OffsetLedger
from streams.settings import Settings

IN = TP("inference.events", 0)
OTHER = TP("inferwatch.alerts", 0)


def _admit_all(ledger: OffsetLedger, tp: TP, offsets: list[int]) -> list[Admission]:
    return [ledger.admit(tp, o)[0] for o in offsets]


def test_contiguous_messages_are_admitted_and_commit_follows_persisted_processing() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 10)
    tickets = [ledger.admit(IN, o)[1] for o in (10, 11, 12)]
    assert ledger.committable(IN) is None  # admitted is not processed
    ledger.done([t for t in tickets if t is not None])
    assert ledger.committable(IN) is None  # processed, but the state holding it is not written yet
    ledger.persist(IN)
    assert ledger.committable(IN) == 13
    assert ledger.expected(IN) == 13


def test_commit_stays_at_the_last_persisted_point_while_processing_goes_on() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 0)
    ledger.done([t for o in range(5) if (t := ledger.admit(IN, o)[1]) is not None])
    ledger.persist(IN)
    ledger.done([t for o in range(5, 9) if (t := ledger.admit(IN, o)[1]) is not None])
    assert ledger.committable(IN) == 5


def test_redelivered_messages_are_seen_not_admitted() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 0)
    assert _admit_all(ledger, IN, [0, 1, 2, 1, 2, 3]) == [Admission.NEXT] * 3 + [Admission.SEEN] * 2 + [Admission.NEXT]


def test_a_hole_is_reported_and_later_messages_wait_for_the_seek() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 5)
    assert _admit_all(ledger, IN, [5, 6, 9]) == [Admission.NEXT, Admission.NEXT, Admission.HOLE]
    assert ledger.expected(IN) == 7
    ledger.start_seek(IN, now=100.0)
    assert ledger.is_seeking(IN, now=101.0)
    assert ledger.admit(IN, 10)[0] is Admission.HOLE  # stale, fetched before the seek
    assert ledger.admit(IN, 7)[0] is Admission.NEXT  # the seek landed
    assert not ledger.is_seeking(IN, now=101.0)


def test_a_seek_that_never_lands_stops_counting_as_under_way() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 0)
    assert ledger.admit(IN, 3)[0] is Admission.HOLE  # offsets 0..2 missing
    ledger.start_seek(IN, now=0.0)
    assert not ledger.is_seeking(IN, now=SEEK_PATIENCE + 1)


def test_an_empty_hole_is_accepted_and_commits_jump_it() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 0)
    (_, t0) = ledger.admit(IN, 0)
    assert t0 is not None
    ledger.done([t0])
    assert ledger.admit(IN, 3)[0] is Admission.HOLE  # 1 and 2 are transaction markers
    ledger.accept_hole(IN, 3)
    (verdict, t3) = ledger.admit(IN, 3)
    assert verdict is Admission.NEXT and t3 is not None
    ledger.done([t3])
    ledger.persist(IN)
    assert ledger.committable(IN) == 4


def test_no_commit_for_an_uncommitted_partition_before_anything_is_processed() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, None)
    assert ledger.admit(IN, 42)[0] is Admission.NEXT  # no commit yet: the first message sets the start
    assert ledger.committable(IN) is None


def test_tickets_of_a_revoked_assignment_are_ignored() -> None:
    ledger = OffsetLedger()
    ledger.assign(IN, 0)
    (_, ticket) = ledger.admit(IN, 0)
    assert ticket is not None
    ledger.revoke([IN])
    assert not ledger.current(ticket)
    ledger.assign(IN, 0)  # the partition comes back while the old batch was in flight
    ledger.done([ticket])
    ledger.persist(IN)
    assert ledger.committable(IN) is None
    assert not ledger.current(ticket)


# -- the guard on the real faust-streaming consumer ---------------------------------------
@pytest.fixture()
def consumer() -> Any:
    service = Service(Settings(), {"inference.events": 1, "gpu.metrics": 1, "inferwatch.alerts": 1})
    return service.app.consumer


def test_commits_of_input_partitions_come_from_the_ledger_not_faust_acks(consumer: Any) -> None:
    ledger = OffsetLedger()
    commit_guard.install(consumer, ledger, {IN.topic})
    # faust acked 0..99 of the input (it acks before the batch is processed) and 0..4 of the alerts
    consumer._acked[IN].extend(range(100))
    consumer._acked_index[IN].update(range(100))
    consumer._acked[OTHER].extend(range(5))
    consumer._acked_index[OTHER].update(range(5))
    ledger.assign(IN, 0)
    ledger.done([t for o in range(40) if (t := ledger.admit(IN, o)[1]) is not None])
    ledger.persist(IN)

    offsets = consumer._filter_committable_offsets([IN, OTHER])

    assert offsets == {IN: 40, OTHER: 5}  # the input only up to what was processed; the rest as faust does
    assert not consumer._acked[IN] and not consumer._acked_index[IN]  # faust's own input bookkeeping is dropped


def test_a_commit_round_takes_owned_input_partitions_that_faust_never_saw(consumer: Any) -> None:
    ledger = OffsetLedger()
    commit_guard.install(consumer, ledger, {IN.topic})
    consumer._acked[OTHER].extend(range(5))  # input records bypass faust's acks: only the alerts have some
    consumer._acked_index[OTHER].update(range(5))
    ledger.assign(IN, 0)
    ledger.done([t for o in range(40) if (t := ledger.admit(IN, o)[1]) is not None])
    ledger.persist(IN)

    round_tps = list(consumer._filter_tps_with_pending_acks())  # what faust's force_commit looks at

    assert sorted(round_tps) == sorted([IN, OTHER])
    assert consumer._filter_committable_offsets(round_tps) == {IN: 40, OTHER: 5}
    assert list(consumer._filter_tps_with_pending_acks({OTHER.topic})) == [OTHER]  # a commit of other topics only


def test_nothing_processed_means_nothing_committed(consumer: Any) -> None:
    ledger = OffsetLedger()
    commit_guard.install(consumer, ledger, {IN.topic})
    consumer._acked[IN].extend(range(10))
    consumer._gap[IN].addi(10, 20)  # faust would commit past a gap it never saw
    ledger.assign(IN, None)
    assert consumer._filter_committable_offsets([IN]) == {}


def test_the_guard_refuses_a_consumer_without_the_internals() -> None:
    with pytest.raises(RuntimeError, match="_filter_committable_offsets"):
        commit_guard.install(object(), OffsetLedger(), {IN.topic})


# -- the gate a worker's agents go through ------------------------------------------------
def test_the_gate_drops_stale_and_redelivered_records_and_reports_holes() -> None:
    service = Service(Settings(), {"inference.events": 1, "gpu.metrics": 1, "inferwatch.alerts": 1})
    gate, generation = service.gate, service.app.consumer_generation_id
    assert gate.admit(IN, 0, generation) is None  # not (yet) assigned: fetched before a rebalance
    gate.ledger.assign(IN, 0)
    assert gate.admit(IN, 0, generation + 1) is None  # an older / other generation
    ticket = gate.admit(IN, 0, generation)
    assert ticket is not None and ticket is not Admission.HOLE and ticket.offset == 0
    assert gate.admit(IN, 0, generation) is None  # redelivered
    assert service.metrics.redelivered.labels(IN.topic)._value.get() == 1
    assert gate.admit(IN, 5, generation) is Admission.HOLE


def test_a_failing_engine_step_dead_letters_the_admitted_records_and_the_batch_still_counts_done() -> None:
    import asyncio
    from types import SimpleNamespace

    service = Service(Settings(), {"inference.events": 1, "gpu.metrics": 1, "inferwatch.alerts": 1})
    rejected: list[tuple[int, str]] = []

    async def reject(record: Any, why: Any) -> None:
        rejected.append((record.offset, why.reason))

    service._reject = reject  # type: ignore[method-assign]
    service.ledger.assign(IN, 0)
    admitted = [(t, SimpleNamespace(offset=o)) for o in (0, 1) if (t := service.ledger.admit(IN, o)[1]) is not None]

    def broken(records: list[Any]) -> Any:
        raise RuntimeError("detector bug")

    asyncio.run(service._run(broken, ["r0", "r1"], admitted))

    assert rejected == [(0, "processing_error"), (1, "processing_error")]
    assert service.ledger.committable(IN) == 2  # dead-lettered counts as processed; nothing was left dirty
