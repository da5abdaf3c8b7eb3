"""inferwatch's own JSON encodings of inference events and GPU samples.

Fast path: the inference event is decoded straight into its struct; only a
message with fields the struct does not name takes the slower path that keeps
them in ``extra``.  Every failure raises ``Rejected`` with a reason code.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from streams.decoding.reasons import from_validation_error, parse_json, reject
from streams.errors import Rejected
from streams.records import GpuSample, InferenceEvent

__all__ = [
    "decode_gpu_sample",
    "decode_inference_event",
    "encode_gpu_sample",
    "encode_inference_event",
    "gpu_sample_from_object",
    "inference_event_from_object",
]

_INFERENCE_DECODER = msgspec.json.Decoder(InferenceEvent)
_ANY_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_INFERENCE_FIELDS = frozenset(InferenceEvent.__struct_fields__) - {"extra"}
_GPU_IDENTITY = ("ts", "host", "gpu", "uuid")
#: Tolerance on sum(probabilities) == 1 (float32 softmax outputs drift by ~1e-6 per class).
_PROB_SUM_TOLERANCE = 1e-3


def decode_inference_event(raw: bytes, *, max_features: int) -> InferenceEvent:
    """Decode and validate one native JSON inference event."""
    try:
        event = parse_json(_INFERENCE_DECODER, raw)
    except Rejected as exc:
        if not exc.detail.startswith("Object contains unknown field"):
            raise
        return inference_event_from_object(parse_json(_ANY_DECODER, raw), max_features=max_features)
    _check_inference(event, max_features)
    return event


def inference_event_from_object(obj: Any, *, max_features: int) -> InferenceEvent:
    """Build an event from an already-parsed JSON value, keeping unknown fields in ``extra``."""
    if not isinstance(obj, dict):
        raise reject("not_object", f"expected a JSON object, got {type(obj).__name__}")
    known = {k: v for k, v in obj.items() if k in _INFERENCE_FIELDS}
    extra = {k: v for k, v in obj.items() if k not in _INFERENCE_FIELDS}
    if extra:
        known["extra"] = extra
    try:
        event = msgspec.convert(known, InferenceEvent)
    except msgspec.ValidationError as exc:
        raise from_validation_error(exc) from None
    _check_inference(event, max_features)
    return event


def _check_inference(event: InferenceEvent, max_features: int) -> None:
    """Rules a JSON schema cannot state: feature count and probability sum.

    Numbers are finite already: the JSON parser rejects NaN, Infinity and overflow.
    """
    if len(event.features) > max_features:
        raise reject("too_many_features", f"{len(event.features)} features, at most {max_features} allowed")
    probs = event.probabilities
    if probs is not None:
        if not probs:
            raise reject("bad_probabilities", "probabilities is an empty list")
        total = math.fsum(probs)
        if abs(total - 1.0) > _PROB_SUM_TOLERANCE:
            raise reject("bad_probabilities", f"probabilities sum to {total:.6g}, not 1")


def encode_inference_event(event: InferenceEvent) -> bytes:
    """The wire JSON of an event: ``extra`` fields go back to the top level."""
    obj = msgspec.to_builtins(event)
    obj.update(obj.pop("extra", {}))
    return _ENCODER.encode(obj)


def decode_gpu_sample(raw: bytes) -> GpuSample:
    """Decode one native JSON GPU sample (DCGM field names as top-level keys)."""
    return gpu_sample_from_object(parse_json(_ANY_DECODER, raw))


def gpu_sample_from_object(obj: Any) -> GpuSample:
    """Build a GPU sample from a parsed JSON object.

    Numbers (and booleans, as 0/1) other than the identity keys become
    ``fields``; strings become ``labels``; nulls are missing and dropped.
    """
    if not isinstance(obj, dict):
        raise reject("not_object", f"expected a JSON object, got {type(obj).__name__}")
    sample: dict[str, Any] = {k: obj[k] for k in _GPU_IDENTITY if k in obj}
    fields: dict[str, float] = {}
    labels: dict[str, str] = {}
    for key, value in obj.items():
        if key in _GPU_IDENTITY or value is None:
            continue
        if isinstance(value, (bool, int, float)):
            try:
                fields[key] = float(value)
            except OverflowError:  # an integer literal beyond double range (the parser keeps those as int)
                raise reject("non_finite", f"{key} is out of double range") from None
        elif isinstance(value, str):
            labels[key] = value
        else:
            raise reject("wrong_type", f"{key} must be a number or string, got {type(value).__name__}")
    sample["fields"] = fields
    sample["labels"] = labels
    try:
        return msgspec.convert(sample, GpuSample)
    except msgspec.ValidationError as exc:
        raise from_validation_error(exc) from None


def encode_gpu_sample(sample: GpuSample) -> bytes:
    """The wire JSON of a GPU sample: fields and labels at the top level."""
    obj: dict[str, Any] = {"ts": sample.ts, "host": sample.host, "gpu": sample.gpu}
    if sample.uuid is not None:
        obj["uuid"] = sample.uuid
    obj.update(sample.labels)
    obj.update(sample.fields)
    return _ENCODER.encode(obj)
