"""KServe payload-logger CloudEvents joined into inference events."""

from __future__ import annotations

import base64
import collections
import json
import random

import pytest

from streams.decoding import GpuDecoder, InferenceDecoder
from streams.decoding.kserve import REQUEST_TYPE, RESPONSE_TYPE
from streams.errors import Rejected
from streams.intake import Intake
from streams.settings import Settings

REQUEST = {
    "id": "abc",
    "inputs": [
        {"name": "amount", "shape": [2], "datatype": "FP32", "data": [10.5, 99.0]},
        {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["DE", "FR"]},
        {"name": "emb", "shape": [2, 3], "datatype": "FP32", "data": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]},
    ],
}
RESPONSE = {
    "model_name": "fraud",
    "model_version": "7",
    "id": "abc",
    "outputs": [{"name": "probs", "shape": [2, 2], "datatype": "FP32", "data": [0.9, 0.1, 0.3, 0.7]}],
}


def _binary(ce_type: str, body: dict, *, ce_id: str = "abc", time: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    headers = [
        ("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()), ("ce_type", ce_type.encode()),
        ("ce_source", b"http://fraud-predictor/"), ("ce_time", time.encode()),
        ("ce_inferenceservicename", b"fraud"), ("ce_namespace", b"prod"), ("content-type", b"application/json"),
    ]
    return json.dumps(body).encode(), headers


def _structured(ce_type: str, body: dict, *, ce_id: str = "abc", time: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    envelope = {
        "specversion": "1.0", "id": ce_id, "type": ce_type, "source": "http://fraud-predictor/", "time": time,
        "inferenceservicename": "fraud", "datacontenttype": "application/json",
        "data_base64": base64.b64encode(json.dumps(body).encode()).decode(),
    }
    return json.dumps(envelope).encode(), [("content-type", b"application/cloudevents+json; charset=utf-8")]


@pytest.mark.parametrize("mode", [_binary, _structured], ids=["binary", "structured"])
@pytest.mark.parametrize("response_first", [False, True])
def test_request_and_response_join_into_one_event_per_row(mode, response_first: bool) -> None:
    decoder = InferenceDecoder(Settings())
    req = mode(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:00.000Z")
    resp = mode(RESPONSE_TYPE, RESPONSE, time="2024-01-01T00:00:00.025Z")
    first, second = (resp, req) if response_first else (req, resp)
    assert decoder.decode(*first) == []
    assert decoder.kserve.pending == 1
    events = decoder.decode(*second)
    assert decoder.kserve.pending == 0
    assert [e.request_id for e in events] == ["abc#0", "abc#1"]
    e0, e1 = events
    assert (e0.model, e0.model_version) == ("fraud", "7")
    assert e0.latency_ms == pytest.approx(25.0, abs=1e-3)  # epoch doubles resolve ~0.2 µs
    assert e0.features == {"amount": 10.5, "country": "DE", "emb[0]": 0.1, "emb[1]": 0.2, "emb[2]": 0.3}
    assert e1.features["country"] == "FR"
    assert (e0.probabilities, e0.confidence, e0.prediction) == ([0.9, 0.1], 0.9, 0)
    assert (e1.confidence, e1.prediction) == (0.7, 1)


def test_a_waiting_half_holds_its_tensors_not_its_parsed_body() -> None:
    """The join reads the response body's model_name / model_version and the tensors: nothing else of
    the parsed JSON is kept while a half waits (it cost 47.6 KB per request of 64 one-value tensors)."""
    decoder = InferenceDecoder(Settings())
    decoder.decode(*_binary(RESPONSE_TYPE, RESPONSE, time="2024-01-01T00:00:00.025Z"))
    decoder.decode(*_binary(REQUEST_TYPE, REQUEST, ce_id="other", time="2024-01-01T00:00:00.000Z"))
    held = {kind: half.event.data for (_, kind), half in decoder.kserve._pending.items()}
    assert held == {RESPONSE_TYPE: {"model_name": "fraud", "model_version": "7"}, REQUEST_TYPE: {}}


def test_unmatched_halves_expire_and_are_counted() -> None:
    now = [0.0]
    decoder = InferenceDecoder(Settings(kserve_join_ttl_seconds=10.0))
    decoder.kserve._clock = lambda: now[0]
    decoder.decode(*_binary(REQUEST_TYPE, REQUEST, ce_id="old", time="2024-01-01T00:00:00Z"))
    now[0] = 11.0
    decoder.decode(*_binary(REQUEST_TYPE, REQUEST, ce_id="new", time="2024-01-01T00:00:11Z"))
    assert (decoder.kserve.pending, decoder.kserve.dropped) == (1, 1)
    assert decoder.decode(*_binary(RESPONSE_TYPE, RESPONSE, ce_id="old", time="2024-01-01T00:00:12Z")) == []


def test_a_worker_timer_lets_an_expired_half_go_though_no_kserve_half_follows() -> None:
    # Before, a half was let go only when the next KServe half was decoded: with no more KServe
    # traffic it waited (and was not dead-lettered) for good.
    now = [0.0]
    intake = Intake(InferenceDecoder(Settings(kserve_join_ttl_seconds=10.0)))
    intake.decoder.kserve._clock = lambda: now[0]
    value, headers = _binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:00Z")
    assert intake.process(topic="in", partition=0, offset=4, key=b"fraud", value=value, headers=headers).records == []
    now[0] = 9.0
    assert intake.expired() == [] and intake.decoder.kserve.pending == 1
    now[0] = 10.5
    (letter,) = intake.expired()
    assert (letter.reason, letter.topic, letter.offset, letter.key, letter.value) == ("unjoined", "in", 4, b"fraud", value)
    assert letter.detail == "no counterpart joined it (dropped at an expiry check)"
    assert (intake.decoder.kserve.pending, intake.decoder.kserve.dropped, intake.rejected["unjoined"]) == (0, 1, 1)
    assert intake.expired() == []


def test_gpu_messages_never_wait() -> None:
    intake = Intake(GpuDecoder(Settings()))
    assert intake.expired() == []


def test_pending_halves_are_bounded() -> None:
    decoder = InferenceDecoder(Settings(kserve_join_max_pending=3))
    for i in range(5):
        decoder.decode(*_binary(REQUEST_TYPE, REQUEST, ce_id=f"r{i}", time="2024-01-01T00:00:00Z"))
    assert (decoder.kserve.pending, decoder.kserve.dropped) == (3, 2)


def test_batch_size_disagreement_is_a_bad_tensor() -> None:
    decoder = InferenceDecoder(Settings())
    decoder.decode(*_binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:00Z"))
    one_row = {**RESPONSE, "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [1]}]}
    with pytest.raises(Rejected) as info:
        decoder.decode(*_binary(RESPONSE_TYPE, one_row, time="2024-01-01T00:00:01Z"))
    assert info.value.reason == "bad_tensor"


def test_a_waiting_half_that_cannot_be_joined_is_dead_lettered_with_its_counterpart() -> None:
    # The request was consumed (and its offset committed) before the response showed the pair
    # cannot be joined: it used to be dropped, only the response reaching the dead-letter topic.
    intake = Intake(InferenceDecoder(Settings()))
    req_value, req_headers = _binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:00Z")
    one_row = {**RESPONSE, "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [1]}]}
    resp_value, resp_headers = _binary(RESPONSE_TYPE, one_row, time="2024-01-01T00:00:01Z")
    first = intake.process(topic="in", partition=0, offset=7, key=b"fraud", value=req_value, headers=req_headers)
    assert (first.records, first.dead, first.earlier) == ([], None, [])
    second = intake.process(topic="in", partition=0, offset=9, key=b"fraud", value=resp_value, headers=resp_headers)
    assert second.dead is not None and (second.dead.reason, second.dead.offset, second.dead.value) == ("bad_tensor", 9, resp_value)
    (request,) = second.earlier
    assert (request.reason, request.offset, request.key, request.value, request.headers) == ("bad_tensor", 7, b"fraud", req_value, req_headers)
    assert request.detail.startswith("with its counterpart in[0]@9: ")
    assert intake.rejected["bad_tensor"] == 2 and intake.decoder.kserve.pending == 0


def test_a_half_dropped_unjoined_is_dead_lettered_with_the_message_that_displaced_it() -> None:
    intake = Intake(InferenceDecoder(Settings(kserve_join_max_pending=1)))

    def request(offset: int, ce_id: str) -> object:
        value, headers = _binary(REQUEST_TYPE, REQUEST, ce_id=ce_id, time="2024-01-01T00:00:00Z")
        return intake.process(topic="in", partition=0, offset=offset, key=b"k", value=value, headers=headers)

    assert request(1, "a").earlier == []
    over = request(2, "b")  # two waiting, one allowed: "a" goes
    assert over.dead is None and [(d.reason, d.offset) for d in over.earlier] == [("unjoined", 1)]
    assert over.earlier[0].detail == "no counterpart joined it (dropped while in[0]@2 was decoded)"
    again = request(3, "b")  # "b" again: the older copy goes
    assert [(d.reason, d.offset) for d in again.earlier] == [("unjoined", 2)]
    assert intake.rejected["unjoined"] == 2 and intake.decoder.kserve.dropped == 2


def test_a_response_timed_before_its_request_is_refused_with_it() -> None:
    # Its latency used to be clamped to 0 without a word.
    intake = Intake(InferenceDecoder(Settings()))
    req_value, req_headers = _binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:01Z")
    resp_value, resp_headers = _binary(RESPONSE_TYPE, RESPONSE, time="2024-01-01T00:00:00Z")
    intake.process(topic="in", partition=0, offset=1, key=None, value=req_value, headers=req_headers)
    result = intake.process(topic="in", partition=0, offset=2, key=None, value=resp_value, headers=resp_headers)
    assert result.dead is not None and result.dead.reason == "out_of_range" and "before request time" in result.dead.detail
    assert [c.offset for c in result.earlier] == [1]


def test_missing_time_falls_back_to_broker_timestamps() -> None:
    decoder = InferenceDecoder(Settings())
    req_value, req_headers = _binary(REQUEST_TYPE, REQUEST, time="x")
    resp_value, resp_headers = _binary(RESPONSE_TYPE, RESPONSE, time="x")
    strip = lambda hs: [(k, v) for k, v in hs if k != "ce_time"]  # noqa: E731
    decoder.decode(req_value, strip(req_headers), timestamp=100.0)
    events = decoder.decode(resp_value, strip(resp_headers), timestamp=100.5)
    assert events[0].ts == 100.0 and events[0].latency_ms == pytest.approx(500.0)


def test_request_with_too_many_features_is_rejected_when_it_arrives() -> None:
    # "Each half is validated when it arrives (so a bad half is rejected with its own bytes)":
    # the feature count was only checked at the join, so the good response was dead-lettered
    # and the request's bytes, already consumed, were lost.
    decoder = InferenceDecoder(Settings(max_features=4))  # REQUEST has 5 features per row
    with pytest.raises(Rejected) as info:
        decoder.decode(*_binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:00Z"))
    assert info.value.reason == "too_many_features"
    assert decoder.kserve.pending == 0


def test_a_half_replaced_by_one_with_the_same_id_is_counted_as_dropped() -> None:
    decoder = InferenceDecoder(Settings())
    decoder.decode(*_binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:00Z"))
    decoder.decode(*_binary(REQUEST_TYPE, REQUEST, time="2024-01-01T00:00:01Z"))
    assert (decoder.kserve.pending, decoder.kserve.dropped) == (1, 1)


def test_the_changes_taken_replayed_in_order_give_the_halves_waiting() -> None:
    # A worker saves only what changed among the held messages (streams.waiting_halves): the
    # record must say every way a half starts or stops waiting, in order.
    now = [0.0]
    intake = Intake(InferenceDecoder(Settings(kserve_join_max_pending=4, kserve_join_ttl_seconds=10.0)))
    intake.decoder.kserve._clock = lambda: now[0]
    assert intake.waiting_changes() == []  # nothing recorded before track_waiting
    intake.track_waiting()
    rng = random.Random(3)
    one_row = {**RESPONSE, "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [1]}]}
    mirror: dict[tuple[int, int], object] = {}
    ways = collections.Counter()
    for offset in range(400):
        partition, ce_id = rng.randrange(2), f"id{rng.randrange(8)}"
        ce_type, body = rng.choice([(REQUEST_TYPE, REQUEST), (RESPONSE_TYPE, RESPONSE), (RESPONSE_TYPE, one_row)])
        now[0] += rng.expovariate(1.0)  # now and then a half outlives the TTL
        value, headers = _binary(ce_type, body, ce_id=ce_id, time="2024-01-01T00:00:00Z")
        result = intake.process(topic="inference", partition=partition, offset=offset, key=None, value=value, headers=headers)
        ways["joined" if result.records else "rejected" if result.dead else "held"] += 1
        ways["let go"] += len(result.earlier)
        if rng.random() < 0.05:
            ways["forgotten"] += intake.forget([("inference", rng.randrange(2))])
        if rng.random() < 0.3:
            for message, held in intake.waiting_changes():
                if held:
                    mirror[(message.partition, message.offset)] = message
                else:
                    del mirror[(message.partition, message.offset)]
            assert set(mirror) == {(m.partition, m.offset) for m in intake.waiting()}
    assert min(ways.values()) > 0, ways  # every way in and out was taken
