"""Waiting KServe halves saved to a table and restored by the partition's next owner.

The table and the consumer are stand-ins (a dict with a changelog log; a paused set);
``tests/integration/test_restart.py`` restores a half through a real worker's crash.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.decoding import InferenceDecoder
from streams.decoding.kserve import REQUEST_TYPE, RESPONSE_TYPE
from streams.intake import Consumed, Intake
from streams.metrics import Metrics
from streams.offsets import OffsetLedger
from streams.settings import Settings
from streams.waiting_halves import WaitingHalves, decode_message, encode_message, last_commits, paused_partitions
from tests.unit.test_kserve import REQUEST, RESPONSE, _binary

TOPIC = "inference.events"
P0, P1 = TP(TOPIC, 0), TP(TOPIC, 1)


class FakeTable:
    """``data`` plus the changelog records sent, as ``(partition, key, value)``."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.changelog: list[tuple[int, str, bytes | None]] = []

    def send_changelog(self, partition: int, key: str, value: bytes | None) -> None:
        self.changelog.append((partition, key, value))


class FakeConsumer:
    """Faust's consumer as far as the store reads it: paused partitions, offsets last committed."""

    def __init__(self, committed: dict[Any, int | None]) -> None:
        self._paused_partitions: set[Any] = set()
        self._committed_offset = {tp: o for tp, o in committed.items() if o is not None}  # as Faust seeds it on assignment


class Worker:
    """What a worker holds for its waiting halves: intake, ledger, consumer, the store."""

    def __init__(self, table: FakeTable, owned: dict[Any, int | None], ttl: float = 60.0, max_pending: int = 10_000) -> None:
        self.intake = Intake(InferenceDecoder(Settings(kserve_join_ttl_seconds=ttl, kserve_join_max_pending=max_pending)))
        self.ledger = OffsetLedger()
        for tp, committed in owned.items():
            self.ledger.assign(tp, committed)
        self.consumer = FakeConsumer(owned)
        self.metrics = Metrics(CollectorRegistry())
        self.waiting = WaitingHalves(table, self.intake, self.ledger, self.consumer, TOPIC, self.metrics)

    def consume(self, tp: Any, offset: int, ce_type: str, body: dict, ce_id: str = "abc", time: str = "2024-01-01T00:00:00Z"):
        value, headers = _binary(ce_type, body, ce_id=ce_id, time=time)
        ticket = self.ledger.admit(tp, offset)[1]
        result = self.intake.process(topic=tp.topic, partition=tp.partition, offset=offset, key=b"fraud", value=value, headers=headers, timestamp=1.71e9)
        self.ledger.done([ticket])
        return result

    def restored(self) -> float:
        return self.metrics.state_restored.labels("kserve_half")._value.get()


def test_a_held_message_round_trips_through_its_table_value() -> None:
    message = Consumed(TOPIC, 3, 17, b"k", b"{}", [("ce_id", b"x"), ("empty", None)], 1.7e9)
    assert decode_message(encode_message(message)) == (message, None)
    assert decode_message(encode_message(message, settled_at=18)) == (message, 18)


def test_a_waiting_half_is_saved_settled_once_joined_and_tombstoned_once_committed_past() -> None:
    table = FakeTable()
    worker = Worker(table, {P0: 0})
    assert worker.waiting.restore() == []  # nothing in the table yet; P0 now counts as restored
    assert worker.consume(P0, 0, REQUEST_TYPE, REQUEST).records == []
    worker.waiting.save()
    assert list(table.data) == ["0:0"] and [(p, k) for p, k, _ in table.changelog] == [(0, "0:0")]
    assert decode_message(table.data["0:0"])[0].offset == 0
    worker.waiting.save()  # nothing changed: nothing written
    assert len(table.changelog) == 1
    assert len(worker.consume(P0, 1, RESPONSE_TYPE, RESPONSE).records) == 2
    worker.waiting.save()
    # Joined, but a crash before the commit reaches offset 2 would have the response read again.
    message, settled_at = decode_message(table.data["0:0"])
    assert (message.offset, settled_at, len(table.changelog)) == (0, 2, 2)
    worker.consumer._committed_offset[P0] = 1
    worker.waiting.save()
    assert "0:0" in table.data and len(table.changelog) == 2
    worker.consumer._committed_offset[P0] = 2
    worker.waiting.save()
    assert table.data == {} and table.changelog[-1] == (0, "0:0", None)


def test_the_next_owner_restores_a_committed_half_and_joins_it() -> None:
    table = FakeTable()
    first = Worker(table, {P0: 0})
    first.waiting.restore()
    first.consume(P0, 0, REQUEST_TYPE, REQUEST)
    first.consume(P0, 1, REQUEST_TYPE, REQUEST, ce_id="later")  # waits too, but beyond the commit
    first.waiting.save()
    # A crash: the successor resumes at offset 1 (offset 0 committed, 1 not).
    second = Worker(table, {P0: 1})
    second.consumer._paused_partitions.add(P0)  # Faust has not recovered the table yet
    assert second.waiting.restore() == [] and second.intake.decoder.kserve.pending == 0
    second.consumer._paused_partitions.clear()
    ((message, result),) = second.waiting.restore()
    assert (message.offset, result.records, result.dead) == (0, [], None)
    assert second.restored() == 1 and second.intake.decoder.kserve.pending == 1
    assert second.waiting.restore() == []  # once per assignment
    second.consume(P0, 1, REQUEST_TYPE, REQUEST, ce_id="later")  # read again, not restored twice
    assert second.intake.decoder.kserve.pending == 2 and second.intake.decoder.kserve.dropped == 0
    events = second.consume(P0, 2, RESPONSE_TYPE, RESPONSE).records
    assert [e.request_id for e in events] == ["abc#0", "abc#1"]
    second.waiting.save()
    assert decode_message(table.data["0:0"])[1] == 3 and decode_message(table.data["0:1"])[1] is None


def _joined_after_commit(table: FakeTable) -> Worker:
    """A worker whose request (offset 0) waited past a commit, then was joined by the response (offset 1)."""
    first = Worker(table, {P0: 0})
    first.waiting.restore()
    first.consume(P0, 0, REQUEST_TYPE, REQUEST)
    first.waiting.save()
    first.consumer._committed_offset[P0] = 1
    assert len(first.consume(P0, 1, RESPONSE_TYPE, RESPONSE).records) == 2
    first.waiting.save()
    return first


def test_after_a_crash_a_half_settled_since_the_commit_is_restored_and_joined_again() -> None:
    table = FakeTable()
    _joined_after_commit(table)
    second = Worker(table, {P0: 1})  # crashed before committing offset 2: the response is read again
    ((message, result),) = second.waiting.restore()
    assert (message.offset, result.records, second.restored()) == (0, [], 1)
    assert decode_message(table.data["0:0"])[1] is None  # waits again
    assert [e.request_id for e in second.consume(P0, 1, RESPONSE_TYPE, RESPONSE).records] == ["abc#0", "abc#1"]
    assert (second.intake.decoder.kserve.pending, second.intake.expired()) == (0, [])


def test_a_half_settled_before_the_commit_is_not_restored_but_tombstoned() -> None:
    table = FakeTable()
    _joined_after_commit(table)
    second = Worker(table, {P0: 2})  # the join is in the committed state
    assert second.waiting.restore() == [] and second.restored() == 0
    assert table.data == {} and table.changelog[-1] == (0, "0:0", None)


def test_nothing_is_restored_without_a_commit_nor_for_a_partition_not_owned() -> None:
    table = FakeTable()
    first = Worker(table, {P0: None, P1: None})
    first.waiting.restore()
    first.consume(P0, 0, REQUEST_TYPE, REQUEST)
    first.consume(P1, 0, REQUEST_TYPE, REQUEST, ce_id="other")
    first.waiting.save()
    assert set(table.data) == {"0:0", "1:0"}
    saved = dict(table.data)
    second = Worker(table, {P0: None})  # no commit: the owner reads offset 0 again
    assert second.waiting.restore() == []
    assert set(table.data) == {"1:0"}  # P0's tombstoned (it waits again if it must); P1's left alone
    table.data = saved
    third = Worker(table, {P0: 5})
    ((message, _),) = third.waiting.restore()  # P1's half belongs to P1's owner
    assert (message.partition, message.offset) == (0, 0)


def test_revoked_partitions_are_saved_then_let_go_silently() -> None:
    table = FakeTable()
    worker = Worker(table, {P0: 0, P1: 0})
    worker.waiting.restore()
    worker.consume(P0, 0, REQUEST_TYPE, REQUEST)
    worker.consume(P1, 0, REQUEST_TYPE, REQUEST, ce_id="stays")
    worker.waiting.release([P0, TP("gpu.metrics", 0)])
    kserve = worker.intake.decoder.kserve
    assert (kserve.pending, kserve.dropped, worker.intake.expired()) == (1, 0, [])
    assert set(table.data) == {"0:0", "1:0"}  # P0's half is there for its next owner
    worker.ledger.revoke([P0])
    worker.waiting.save()
    assert set(table.data) == {"0:0", "1:0"}  # a partition no longer restored is left alone


def test_a_restored_half_that_cannot_be_used_now_is_dead_lettered() -> None:
    table = FakeTable()
    table.data["0:3"] = encode_message(Consumed(TOPIC, 0, 3, b"fraud", b"not json", [("ce_id", b"x"), ("ce_type", REQUEST_TYPE.encode())], 1.7e9))
    table.data["0:4"] = b"\xc1 not msgpack"
    worker = Worker(table, {P0: 10})
    ((message, result),) = worker.waiting.restore()  # the undecodable value is removed (logged)
    assert message.offset == 3 and result.dead is not None and result.dead.offset == 3
    assert list(table.data) == ["0:3"]
    worker.waiting.save()  # settled at the offset resumed at, which is committed
    assert table.data == {}


def test_restored_halves_wait_their_ttl_anew_and_then_go_unjoined() -> None:
    table = FakeTable()
    first = Worker(table, {P0: 0})
    first.waiting.restore()
    first.consume(P0, 0, REQUEST_TYPE, REQUEST)
    first.waiting.save()
    now = [100.0]
    second = Worker(table, {P0: 1}, ttl=10.0)
    second.intake.decoder.kserve._clock = lambda: now[0]
    second.waiting.restore()
    now[0] = 109.0
    assert second.intake.expired() == []
    now[0] = 111.0
    (letter,) = second.intake.expired()
    assert (letter.reason, letter.offset) == ("unjoined", 0)


def test_the_consumer_must_expose_its_paused_partitions_and_committed_offsets() -> None:
    with pytest.raises(RuntimeError, match="_paused_partitions"):
        paused_partitions(object())
    with pytest.raises(RuntimeError, match="_committed_offset"):
        last_commits(object())


def test_faust_consumer_keeps_paused_partitions_where_the_store_reads_them() -> None:
    from faust.transport.consumer import Consumer

    assert "_paused_partitions" in Consumer.__annotations__ and "_committed_offset" in Consumer.__annotations__


def test_a_half_consumed_before_its_partition_is_restored_is_saved_once_it_is() -> None:
    table = FakeTable()
    worker = Worker(table, {P0: 0})
    worker.consume(P0, 0, REQUEST_TYPE, REQUEST)  # Faust resumed fetching before restore ran
    worker.waiting.save()
    assert table.data == {}  # not restored yet: its table is not this worker's to write
    assert worker.waiting.restore() == []
    worker.waiting.save()
    assert list(table.data) == ["0:0"] and decode_message(table.data["0:0"])[1] is None


def test_what_a_save_writes_matches_every_half_held_whatever_came_between() -> None:
    # A save writes only the halves that started or stopped waiting since the last one: after
    # each, the table holds exactly the halves waiting, and settled ones the commit has not passed.
    rng = random.Random(5)
    now = [0.0]
    table = FakeTable()
    worker = Worker(table, {P0: 0, P1: 0}, ttl=10.0, max_pending=6)
    worker.intake.decoder.kserve._clock = lambda: now[0]
    worker.waiting.restore()
    offsets = {P0: 0, P1: 0}
    for _ in range(600):
        tp = rng.choice([P0, P1])
        now[0] += rng.expovariate(1.0)
        ce_type, body = rng.choice([(REQUEST_TYPE, REQUEST), (RESPONSE_TYPE, RESPONSE)])
        worker.consume(tp, offsets[tp], ce_type, body, ce_id=f"id{rng.randrange(10)}")
        offsets[tp] += 1
        if rng.random() < 0.1:
            worker.consumer._committed_offset[tp] = rng.randint(worker.consumer._committed_offset.get(tp, 0), offsets[tp])
        if rng.random() < 0.2:
            worker.waiting.save()
            for p in (P0, P1):
                stored = {k: decode_message(v) for k, v in table.data.items() if k.startswith(f"{p.partition}:")}
                held = {f"{m.partition}:{m.offset}" for m in worker.intake.waiting() if m.partition == p.partition}
                assert {k for k, (_, at) in stored.items() if at is None} == held
                assert all(at > worker.consumer._committed_offset[p] for _, at in stored.values() if at is not None)
    kserve = worker.intake.decoder.kserve
    assert kserve.dropped > 0 and len(table.changelog) > 100  # halves were let go, and many written


def test_a_save_with_nothing_changed_looks_at_no_half(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its cost follows what changed, not how many halves are held (bench.kserve_memory times it).
    import streams.waiting_halves as module

    table = FakeTable()
    worker = Worker(table, {P0: 0})
    worker.waiting.restore()
    for offset in range(200):
        worker.consume(P0, offset, REQUEST_TYPE, REQUEST, ce_id=f"r{offset}")
    worker.waiting.save()
    looked: list[str] = []
    monkeypatch.setattr(module, "_key", lambda message: looked.append("x") or f"{message.partition}:{message.offset}")
    worker.waiting.save()
    assert looked == [] and len(table.data) == 200
    worker.consume(P0, 200, RESPONSE_TYPE, RESPONSE, ce_id="r7")  # joins one
    worker.waiting.save()
    assert len(looked) == 1 and decode_message(table.data["0:7"])[1] == 201
