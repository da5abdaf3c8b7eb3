"""Turn parser and validation failures into ``Rejected`` with a stable reason code."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from streams.errors import Rejected

__all__ = ["REASONS", "check_not_ahead", "from_decode_error", "from_validation_error", "parse_json", "reject"]

#: Every reason code a dead-letter record can carry, with what it means.
REASONS: dict[str, str] = {
    "empty": "the message has no bytes",
    "oversized": "the message is larger than INFERWATCH_MAX_MESSAGE_BYTES",
    "not_utf8": "the bytes are not UTF-8 text",
    "not_json": "the bytes are not a JSON document",
    "non_finite": "a number is NaN, Infinity or out of double range",
    "not_object": "the JSON document is not an object",
    "missing_field": "a required field is absent",
    "wrong_type": "a field has the wrong JSON type",
    "out_of_range": "a number is outside its allowed range (negative latency, confidence > 1, ...)",
    "bad_timestamp": "ts is neither epoch seconds nor an RFC 3339 time with offset, is before 1970, or is more than INFERWATCH_MAX_EVENT_AHEAD_SECONDS after the message's Kafka timestamp",
    "too_many_features": "more features than INFERWATCH_MAX_FEATURES",
    "bad_probabilities": "probabilities do not sum to 1",
    "unknown_encoding": "a content type, content encoding or framing inferwatch does not read",
    "bad_cloudevent": "a CloudEvent without its required attributes or with an unknown type",
    "bad_tensor": "an Open Inference Protocol tensor whose shape, datatype and data disagree",
    "bad_command": "a control message that is not a valid reference command",
    "unjoined": "a KServe request or response whose counterpart did not come within INFERWATCH_KSERVE_JOIN_TTL_SECONDS (or before INFERWATCH_KSERVE_JOIN_MAX_PENDING others), or came again under the same id",
    "processing_error": "the detectors failed on the batch holding this message (a bug: please report it)",
    "decoder_error": "the decoder itself failed (a bug: please report it with the dead letter)",
}

_NON_FINITE_TOKENS = (b"NaN", b"Infinity", b"-Infinity")


def reject(reason: str, detail: str) -> Rejected:
    """A ``Rejected`` with a known reason code (guards against typos)."""
    assert reason in REASONS, reason
    return Rejected(reason, detail)


def check_not_ahead(ts: float, produced_at: float, max_ahead: float) -> None:
    """``Rejected`` (bad_timestamp) when ``ts`` is more than ``max_ahead`` seconds after ``produced_at``,
    the Kafka message's timestamp (epoch s; ``<= 0``: unknown, nothing to check against)."""
    if produced_at > 0.0 and ts - produced_at > max_ahead:
        raise reject(
            "bad_timestamp",
            f"ts {ts:.0f} is {ts - produced_at:.0f} s after the message's Kafka timestamp {produced_at:.0f} "
            f"(at most {max_ahead:g}: INFERWATCH_MAX_EVENT_AHEAD_SECONDS)",
        )


def parse_json(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    """``decoder.decode(raw)``, with every parser failure turned into ``Rejected``."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        raise from_validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise from_decode_error(exc, raw) from None
    except UnicodeDecodeError as exc:  # its position is within one JSON string: find it in the message
        at = _utf8_error_at(raw)
        raise reject("not_utf8", f"invalid UTF-8 at byte {exc.start if at is None else at}") from None
    except RecursionError:
        raise reject("not_json", "arrays / objects nested deeper than the parser's recursion limit") from None


def from_decode_error(exc: msgspec.DecodeError, raw: bytes) -> Rejected:
    """Classify a JSON syntax error."""
    if str(exc).startswith("Number out of range") or any(tok in raw for tok in _NON_FINITE_TOKENS):
        return reject("non_finite", f"NaN and Infinity are not JSON numbers ({exc})")
    at = _utf8_error_at(raw)
    if at is not None:
        return reject("not_utf8", f"invalid UTF-8 at byte {at}")
    return reject("not_json", str(exc))


def _utf8_error_at(raw: bytes) -> int | None:
    """Offset of the first invalid UTF-8 byte in ``raw`` (``None``: it is all valid)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


_CONSTRAINT = re.compile(r"Expected `[^`]+` (>=|<=|>|<|of length)")
_PATH = re.compile(r" - at `([^`]+)`$")


def from_validation_error(exc: msgspec.ValidationError) -> Rejected:
    """Classify a schema violation reported by msgspec."""
    msg = str(exc)
    if msg.startswith("bad timestamp"):
        return reject("bad_timestamp", msg)
    if msg.startswith("Number out of range"):
        return reject("non_finite", msg)
    if msg.startswith("Object missing required field"):
        return reject("missing_field", msg)
    if msg.startswith("Expected `object`") and not _PATH.search(msg):
        return reject("not_object", msg)
    if _CONSTRAINT.match(msg):
        return reject("out_of_range", msg)
    return reject("wrong_type", msg)
