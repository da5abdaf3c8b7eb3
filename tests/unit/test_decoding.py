"""Decoders: valid records round-trip; every malformed message gets its reason."""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from streams.decoding import REASONS, GpuDecoder, InferenceDecoder, encode_gpu_sample, encode_inference_event
from streams.errors import Rejected
from streams.records import GpuSample, InferenceEvent
from streams.settings import Settings
from tests.cases import MAX_BYTES, PRODUCED_AT, encoded_valid, malformed_cases

SETTINGS = Settings(max_message_bytes=MAX_BYTES)
CASES = malformed_cases()


def _decode(topic: str, value: bytes, headers: list[tuple[str, bytes | None]] | None = None, timestamp: float = PRODUCED_AT) -> list[object]:
    """Decode as a worker would, the message produced at ``timestamp`` (0: no Kafka timestamp)."""
    decoder = InferenceDecoder(SETTINGS) if topic == "inference" else GpuDecoder(SETTINGS)
    return decoder.decode(value, headers, timestamp)


@pytest.mark.parametrize(("topic", "raw", "record"), encoded_valid())
def test_valid_records_round_trip(topic: str, raw: bytes, record: object) -> None:
    assert _decode(topic, raw) == [record]


def test_there_are_at_least_twenty_distinct_malformed_cases() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 20
    assert len({c.reason for c in CASES}) >= 12


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_message_is_rejected_with_its_reason(case) -> None:
    with pytest.raises(Rejected) as info:
        _decode(case.topic, case.value, case.headers)
    assert info.value.reason == case.reason, info.value.detail
    assert info.value.reason in REASONS
    assert info.value.detail


def test_unknown_fields_are_kept_and_written_back() -> None:
    raw = b'{"ts": 1, "model": "m", "latency_ms": 2, "tenant": "acme", "nested": {"a": [1]}}'
    (event,) = _decode("inference", raw)
    assert event.extra == {"tenant": "acme", "nested": {"a": [1]}}
    assert json.loads(encode_inference_event(event)) == json.loads(raw)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [(1_700_000_000, 1_700_000_000.0), (1_700_000_000_123, 1_700_000_000.123), ("2023-11-14T22:13:20+00:00", 1_700_000_000.0), ("2023-11-14T23:13:20+01:00", 1_700_000_000.0)],
)
def test_timestamps_in_seconds_millis_and_rfc3339(ts: object, expected: float) -> None:
    (event,) = _decode("inference", json.dumps({"ts": ts, "model": "m", "latency_ms": 1}).encode())
    assert math.isclose(event.ts, expected, abs_tol=1e-6)


def test_telegraf_batch_gives_one_sample_per_gpu() -> None:
    metric = {"name": "nvidia_smi", "tags": {"host": "h1", "index": "0", "uuid": "GPU-0", "name": "A100"}, "fields": {"utilization_gpu": 50, "power_draw": 210.5, "fan_speed": 30}, "timestamp": 1_700_000_000}
    second = {**metric, "tags": {**metric["tags"], "index": "1", "uuid": "GPU-1"}}
    samples = _decode("gpu", json.dumps({"metrics": [metric, second]}).encode())
    assert [s.gpu for s in samples] == [0, 1]
    assert samples[0].fields == {"DCGM_FI_DEV_GPU_UTIL": 50.0, "DCGM_FI_DEV_POWER_USAGE": 210.5, "DCGM_FI_DEV_FAN_SPEED": 30.0}
    assert samples[0].labels == {"modelName": "A100"} and samples[1].uuid == "GPU-1"


# -- property-based -----------------------------------------------------------

_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_feature = st.one_of(_finite, st.text(max_size=10), st.booleans(), st.none())


@st.composite
def inference_events(draw: st.DrawFn) -> InferenceEvent:
    probs = draw(st.none() | st.lists(st.floats(0.01, 1.0), min_size=2, max_size=5))
    if probs:
        total = sum(probs)
        probs = [p / total for p in probs]
    return InferenceEvent(
        ts=draw(st.floats(0, 4e9)),
        model=draw(_names),
        latency_ms=draw(st.floats(0, 1e7)),
        model_version=draw(st.none() | _names),
        host=draw(st.none() | _names),
        gpu=draw(st.none() | st.integers(0, 16)),
        features=draw(st.dictionaries(_names, _feature, max_size=8)),
        prediction=draw(st.none() | st.integers(-5, 5) | _names),
        confidence=draw(st.none() | st.floats(0, 1)),
        probabilities=probs,
    )


@hsettings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(inference_events())
def test_any_valid_event_round_trips(event: InferenceEvent) -> None:
    assert _decode("inference", encode_inference_event(event), timestamp=0.0) == [event]  # any valid time, no Kafka timestamp


@hsettings(max_examples=300)
@given(st.binary(max_size=300), st.sampled_from(["inference", "gpu"]))
def test_arbitrary_bytes_decode_or_are_rejected(raw: bytes, topic: str) -> None:
    try:
        _decode(topic, raw)
    except Rejected as exc:
        assert exc.reason in REASONS


_json = st.recursive(st.none() | st.booleans() | _finite | st.text(max_size=8), lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)


@hsettings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["ts", "model", "latency_ms", "features", "confidence", "probabilities", "gpu", "host", "x"]), _json), st.sampled_from(["inference", "gpu"]))
def test_arbitrary_json_objects_decode_or_are_rejected(obj: dict, topic: str) -> None:
    try:
        records = _decode(topic, msgspec.json.encode(obj))
    except Rejected as exc:
        assert exc.reason in REASONS
    else:
        assert len(records) == 1


@st.composite
def gpu_samples(draw: st.DrawFn) -> GpuSample:
    names = st.sampled_from(["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_XID_ERRORS"])
    return GpuSample(
        ts=draw(st.floats(0, 4e9)),
        host=draw(_names),
        gpu=draw(st.integers(0, 15)),
        uuid=draw(st.none() | st.text(min_size=1, max_size=12)),
        fields=draw(st.dictionaries(names, _finite, max_size=5)),
        labels=draw(st.dictionaries(st.sampled_from(["modelName", "pci_bus_id"]), st.text(max_size=10), max_size=2)),
    )


@hsettings(max_examples=200)
@given(gpu_samples())
def test_any_valid_gpu_sample_round_trips(sample: GpuSample) -> None:
    assert _decode("gpu", encode_gpu_sample(sample), timestamp=0.0) == [sample]


# -- edge inputs found in review ----------------------------------------------

_DEEP = b"[" * 1_500 + b"]" * 1_500  # past the recursion limit (1000), inside MAX_BYTES
_TG = {"name": "nvidia_smi", "fields": {"utilization_gpu": 5}, "timestamp": 1_700_000_000}

EDGE_CASES = [
    # RFC 3339 times before 1970 are negative epoch seconds, refused as numbers but accepted as strings
    ("ts_rfc3339_before_epoch", "inference", b'{"ts": "1969-12-31T23:59:59Z", "model": "m", "latency_ms": 1}', "bad_timestamp"),
    ("ts_rfc3339_year_zero_utc", "inference", b'{"ts": "0001-01-01T00:00:00+01:00", "model": "m", "latency_ms": 1}', "bad_timestamp"),
    ("gpu_ts_rfc3339_before_epoch", "gpu", b'{"ts": "1969-01-01T00:00:00Z", "host": "h", "gpu": 0}', "bad_timestamp"),
    # nesting deeper than the parser's recursion limit: was decoder_error (RecursionError)
    ("deep_extra", "inference", b'{"ts": 1, "model": "m", "latency_ms": 1, "x": ' + _DEEP + b"}", "not_json"),
    ("gpu_deep_field", "gpu", b'{"ts": 1, "host": "h", "gpu": 0, "X": ' + _DEEP + b"}", "not_json"),
    # an integer beyond double range in a GPU field: was decoder_error (OverflowError in float())
    ("gpu_field_huge_int", "gpu", b'{"ts": 1, "host": "h", "gpu": 0, "X": 1' + b"0" * 400 + b"}", "non_finite"),
    # Telegraf index tags that are not integers were coerced by int(): true -> 1, 1.7 -> 1, "1_0" -> 10
    ("telegraf_index_bool", "gpu", json.dumps({**_TG, "tags": {"host": "h", "index": True}}).encode(), "wrong_type"),
    ("telegraf_index_float", "gpu", json.dumps({**_TG, "tags": {"host": "h", "index": 1.7}}).encode(), "wrong_type"),
    ("telegraf_index_underscore", "gpu", json.dumps({**_TG, "tags": {"host": "h", "index": "1_0"}}).encode(), "wrong_type"),
    # an empty "metrics" list gave no record and no dead letter: the message vanished
    ("telegraf_empty_batch", "gpu", b'{"metrics": []}', "missing_field"),
    ("gpu_sample_with_metrics_list", "gpu", b'{"ts": 1, "host": "h", "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": 50, "metrics": []}', "missing_field"),
]


@pytest.mark.parametrize(("topic", "raw", "reason"), [c[1:] for c in EDGE_CASES], ids=[c[0] for c in EDGE_CASES])
def test_edge_input_is_rejected_with_its_reason(topic: str, raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        _decode(topic, raw)
    assert info.value.reason == reason, info.value.detail


def test_telegraf_integer_index_tag_is_still_read() -> None:
    for index in ("3", 3):
        (sample,) = _decode("gpu", json.dumps({**_TG, "tags": {"host": "h", "index": index}}).encode())
        assert sample.gpu == 3


# -- times ahead of the message's Kafka timestamp --------------------------------


@pytest.mark.parametrize(("topic", "template"), [
    ("inference", '{{"ts": {ts}, "model": "m", "latency_ms": 1}}'),
    ("gpu", '{{"ts": {ts}, "host": "h", "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": 5}}'),
    ("gpu", '{{"name": "nvidia_smi", "tags": {{"host": "h", "index": "0"}}, "fields": {{"utilization_gpu": 5}}, "timestamp": {ts}}}'),
])
def test_a_time_ahead_of_the_kafka_timestamp_is_refused_beyond_the_setting(topic: str, template: str) -> None:
    settings = Settings(max_message_bytes=MAX_BYTES, max_event_ahead_seconds=60.0)
    decoder = InferenceDecoder(settings) if topic == "inference" else GpuDecoder(settings)
    (record,) = decoder.decode(template.format(ts=PRODUCED_AT + 60).encode(), None, PRODUCED_AT)
    assert record.ts == PRODUCED_AT + 60  # at the limit: kept
    with pytest.raises(Rejected) as info:
        decoder.decode(template.format(ts=PRODUCED_AT + 61).encode(), None, PRODUCED_AT)
    assert info.value.reason == "bad_timestamp" and "INFERWATCH_MAX_EVENT_AHEAD_SECONDS" in info.value.detail
    # With no Kafka timestamp (0) there is nothing to compare with: the time is kept.
    (record,) = decoder.decode(template.format(ts=PRODUCED_AT + 61).encode(), None, 0.0)
    assert record.ts == PRODUCED_AT + 61


def test_the_time_limit_ahead_reads_the_environment() -> None:
    assert Settings.from_env({"INFERWATCH_MAX_EVENT_AHEAD_SECONDS": "90"}).max_event_ahead_seconds == 90.0
    assert Settings().max_event_ahead_seconds == 3600.0


def test_a_header_without_a_value_is_as_if_absent() -> None:
    # A null content-type was read as the text "None" and refused as unknown_encoding.
    raw = b'{"ts": 1700000000, "model": "m", "latency_ms": 2}'
    (event,) = _decode("inference", raw, [("content-type", None), ("ce_time", None)])
    assert event.latency_ms == 2.0
    (sample,) = _decode("gpu", b'{"ts": 1700000000, "host": "h", "gpu": 0}', [("content-type", None)])
    assert sample.host == "h"


def test_not_utf8_names_the_offending_byte_of_the_message() -> None:
    # msgspec reports the position within the JSON string holding the byte ("at byte 0" here).
    raw = b'{"ts": 1, "model": "m", "latency_ms": 1, "note": "ab\xffc"}'
    with pytest.raises(Rejected) as info:
        _decode("inference", raw)
    assert info.value.reason == "not_utf8" and info.value.detail == f"invalid UTF-8 at byte {raw.index(0xFF)}"
