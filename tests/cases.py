"""Shared message cases: valid records and malformed messages with their expected reason."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Literal

from streams.decoding import encode_gpu_sample, encode_inference_event
from streams.records import GpuSample, InferenceEvent

Topic = Literal["inference", "gpu"]
MAX_BYTES = 4096  # the settings used with these cases: small, so "oversized" is cheap to build
#: The Kafka timestamp the unit tests decode these cases with (2027-01-15; the broker's own in the integration test).
PRODUCED_AT = 1_800_000_000.0
#: 2100-01-01: far ahead of any message's Kafka timestamp.
_YEAR_2100 = 4_102_444_800


@dataclass(frozen=True)
class Malformed:
    """A message that must be refused with ``reason``."""

    name: str
    topic: Topic
    value: bytes
    reason: str
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def valid_events() -> list[InferenceEvent]:
    return [
        InferenceEvent(ts=1_700_000_000.5, model="fraud", latency_ms=12.5, features={"amount": 10.0, "country": "DE", "new": True, "age": None}),
        InferenceEvent(
            ts=1_700_000_001.0, model="fraud", model_version="v2", latency_ms=0.0, request_id="r-1", host="node-1",
            gpu=0, gpu_uuid="GPU-aaaa", prediction="ok", confidence=0.91, probabilities=[0.91, 0.09], label="ok",
            extra={"tenant": "acme", "trace": {"id": "abc"}},
        ),
        InferenceEvent(ts=1_700_000_002.0, model="llm-chat", latency_ms=850.0, ttft_ms=120.0, tokens_in=512, tokens_out=128, prediction=3),
    ]


def valid_gpu_samples() -> list[GpuSample]:
    return [
        GpuSample(ts=1_700_000_000.0, host="node-1", gpu=0, uuid="GPU-aaaa", fields={"DCGM_FI_DEV_GPU_UTIL": 87.0, "DCGM_FI_DEV_FB_USED": 30_000.0, "DCGM_FI_DEV_XID_ERRORS": 0.0}),
        GpuSample(ts=1_700_000_000.0, host="node-1", gpu=1, fields={"DCGM_FI_DEV_GPU_TEMP": 71.0}, labels={"modelName": "NVIDIA A100"}),
    ]


def _ev(**fields: object) -> bytes:
    base: dict[str, object] = {"ts": 1_700_000_000, "model": "m", "latency_ms": 5.0}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not _DROP}).encode()


_DROP = object()
_CE = [("ce_specversion", b"1.0"), ("ce_source", b"http://pod/"), ("ce_time", b"2024-01-01T00:00:00Z"), ("content-type", b"application/json")]
_REQ_TYPE = b"org.kubeflow.serving.inference.request"


def malformed_cases() -> list[Malformed]:
    """At least 20 distinct malformed messages, each with the reason it must get."""
    inference = [
        Malformed("empty", "inference", b"", "empty"),
        Malformed("oversized", "inference", _ev(pad="x" * MAX_BYTES), "oversized"),
        Malformed("truncated_json", "inference", b'{"ts": 1, "model": "m"', "not_json"),
        Malformed("not_utf8", "inference", b'{"model": "\xff\xfe"}', "not_utf8"),
        Malformed("nan", "inference", b'{"ts": 1, "model": "m", "latency_ms": NaN}', "non_finite"),
        Malformed("infinity", "inference", b'{"ts": 1, "model": "m", "latency_ms": Infinity}', "non_finite"),
        Malformed("overflow", "inference", b'{"ts": 1, "model": "m", "latency_ms": 1e999}', "non_finite"),
        Malformed("array", "inference", b"[1, 2, 3]", "not_object"),
        Malformed("string", "inference", b'"hello"', "not_object"),
        Malformed("missing_ts", "inference", _ev(ts=_DROP), "missing_field"),
        Malformed("missing_model", "inference", _ev(model=_DROP), "missing_field"),
        Malformed("missing_latency", "inference", _ev(latency_ms=_DROP), "missing_field"),
        Malformed("latency_string", "inference", _ev(latency_ms="fast"), "wrong_type"),
        Malformed("model_number", "inference", _ev(model=42), "wrong_type"),
        Malformed("features_nested", "inference", _ev(features={"a": {"b": 1}}), "wrong_type"),
        Malformed("features_list", "inference", _ev(features=[1, 2]), "wrong_type"),
        Malformed("negative_latency", "inference", _ev(latency_ms=-3.0), "out_of_range"),
        Malformed("confidence_above_one", "inference", _ev(confidence=1.5), "out_of_range"),
        Malformed("negative_gpu_index", "inference", _ev(gpu=-1), "out_of_range"),
        Malformed("empty_model", "inference", _ev(model=""), "out_of_range"),
        Malformed("ts_words", "inference", _ev(ts="yesterday"), "bad_timestamp"),
        Malformed("ts_no_offset", "inference", _ev(ts="2024-01-01T00:00:00"), "bad_timestamp"),
        Malformed("ts_negative", "inference", _ev(ts=-5), "bad_timestamp"),
        Malformed("ts_far_future", "inference", _ev(ts=_YEAR_2100), "bad_timestamp"),
        Malformed("too_many_features", "inference", _ev(features={f"f{i}": 1.0 for i in range(300)}), "too_many_features"),
        Malformed("probabilities_sum", "inference", _ev(probabilities=[0.2, 0.2]), "bad_probabilities"),
        Malformed("not_json_null_header", "inference", b"{oops", "not_json", [("x-trace", None), ("content-type", None)]),
        Malformed("gzip", "inference", b"\x1f\x8b\x08\x00", "unknown_encoding", [("content-encoding", b"gzip")]),
        Malformed("confluent_avro", "inference", b"\x00\x00\x00\x00\x01\x02", "unknown_encoding"),
        Malformed("protobuf_content_type", "inference", _ev(), "unknown_encoding", [("content-type", b"application/x-protobuf")]),
        Malformed("ce_missing_id", "inference", b'{"inputs": []}', "bad_cloudevent", [*_CE, ("ce_type", _REQ_TYPE)]),
        Malformed("ce_unknown_type", "inference", b"{}", "bad_cloudevent", [*_CE, ("ce_id", b"1"), ("ce_type", b"com.example.other")]),
        Malformed("ce_old_spec", "inference", b"{}", "bad_cloudevent", [("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", _REQ_TYPE)]),
        Malformed(
            "oip_shape_mismatch", "inference",
            json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0]}]}).encode(),
            "bad_tensor", [*_CE, ("ce_id", b"s1"), ("ce_type", _REQ_TYPE)],
        ),
        Malformed(
            "oip_bad_datatype", "inference",
            json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP128", "data": [1.0]}]}).encode(),
            "bad_tensor", [*_CE, ("ce_id", b"s2"), ("ce_type", _REQ_TYPE)],
        ),
        Malformed(
            "ce_time_far_future", "inference",
            json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode(),
            "bad_timestamp", [*_CE[:2], ("ce_time", b"2100-01-01T00:00:00Z"), _CE[3], ("ce_id", b"s4"), ("ce_type", _REQ_TYPE)],
        ),
        Malformed(
            "oip_int8_out_of_range", "inference",
            json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 300]}]}).encode(),
            "bad_tensor", [*_CE, ("ce_id", b"s5"), ("ce_type", _REQ_TYPE)],
        ),
        Malformed(
            "ce_structured_id_not_text", "inference",
            json.dumps({"specversion": "1.0", "id": 5, "source": "s", "type": _REQ_TYPE.decode(), "data": {"inputs": []}}).encode(),
            "bad_cloudevent", [("content-type", b"application/cloudevents+json")],
        ),
        Malformed(
            "oip_no_inputs", "inference", b'{"id": "x"}', "bad_tensor", [*_CE, ("ce_id", b"s3"), ("ce_type", _REQ_TYPE)],
        ),
        Malformed(
            "ce_structured_bad_base64", "inference",
            json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": _REQ_TYPE.decode(), "data_base64": "***"}).encode(),
            "bad_cloudevent", [("content-type", b"application/cloudevents+json")],
        ),
        Malformed(
            "ce_data_not_json", "inference", base64.b64encode(b"xx"), "unknown_encoding",
            [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", _REQ_TYPE), ("content-type", b"text/csv")],
        ),
    ]
    gpu = [
        Malformed("gpu_missing_host", "gpu", b'{"ts": 1, "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": 5}', "missing_field"),
        Malformed("gpu_index_string", "gpu", b'{"ts": 1, "host": "h", "gpu": "zero"}', "wrong_type"),
        Malformed("gpu_field_object", "gpu", b'{"ts": 1, "host": "h", "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": {"v": 1}}', "wrong_type"),
        Malformed("gpu_nan", "gpu", b'{"ts": 1, "host": "h", "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": NaN}', "non_finite"),
        Malformed("gpu_not_json", "gpu", b"util=5", "not_json"),
        Malformed("gpu_ts_far_future", "gpu", b'{"ts": 4102444800, "host": "h", "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": 5}', "bad_timestamp"),
        Malformed(
            "telegraf_one_far_future", "gpu",
            json.dumps({"metrics": [
                {"name": "nvidia_smi", "tags": {"host": "h", "index": "0"}, "fields": {"utilization_gpu": 5}, "timestamp": 1_700_000_000},
                {"name": "nvidia_smi", "tags": {"host": "h", "index": "1"}, "fields": {"utilization_gpu": 5}, "timestamp": _YEAR_2100},
            ]}).encode(),
            "bad_timestamp",
        ),
        Malformed("telegraf_no_index", "gpu", b'{"name": "nvidia_smi", "tags": {"host": "h"}, "fields": {}, "timestamp": 1}', "missing_field"),
        Malformed("telegraf_bad_index", "gpu", b'{"name": "nvidia_smi", "tags": {"host": "h", "index": "x"}, "fields": {}, "timestamp": 1}', "wrong_type"),
        Malformed("telegraf_other_metric", "gpu", b'{"metrics": [{"name": "cpu", "tags": {}, "fields": {}}]}', "unknown_encoding"),
    ]
    return inference + gpu


def encoded_valid() -> list[tuple[Topic, bytes, object]]:
    """``(topic, bytes, record)`` for every valid record."""
    return [("inference", encode_inference_event(e), e) for e in valid_events()] + [
        ("gpu", encode_gpu_sample(s), s) for s in valid_gpu_samples()
    ]
