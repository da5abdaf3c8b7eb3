"""CloudEvents over Kafka (binary and structured content modes), spec v1.0.

Binary mode: attributes are ``ce_*`` headers and the value is the data.
Structured mode: the ``content-type`` header is ``application/cloudevents+json``
and the value is a JSON envelope holding the attributes and ``data`` (or
``data_base64``).  Either way the result is a ``CloudEvent``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.decoding.reasons import parse_json, reject

__all__ = ["CloudEvent", "headers_to_dict", "is_cloudevent", "parse_cloudevent"]

_STRUCTURED_TYPE = "application/cloudevents+json"
_REQUIRED = ("id", "source", "type", "specversion")
_ANY = msgspec.json.Decoder()

Headers = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """The attributes of one CloudEvent and its data (parsed JSON when JSON)."""

    id: str
    type: str
    source: str
    time: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    data: Any = None


def headers_to_dict(headers: Headers) -> dict[str, str]:
    """Kafka headers as ``{lower-case name: text}``; null and undecodable values are dropped (as if absent)."""
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        if value is None:  # Kafka allows a header without a value
            continue
        try:
            out[name.lower()] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
    return out


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """True when the headers mark a CloudEvent in binary or structured mode."""
    return "ce_specversion" in headers or headers.get("content-type", "").startswith(_STRUCTURED_TYPE)


def parse_cloudevent(raw: bytes, headers: Mapping[str, str]) -> CloudEvent:
    """Parse a CloudEvent from a Kafka message; raises ``Rejected`` (``bad_cloudevent`` ...)."""
    if headers.get("content-type", "").startswith(_STRUCTURED_TYPE):
        envelope = _json(raw)
        if not isinstance(envelope, dict):
            raise reject("bad_cloudevent", "structured CloudEvent is not a JSON object")
        attrs = {k: v for k, v in envelope.items() if k not in ("data", "data_base64")}
        data = _structured_data(envelope)
        content_type = str(envelope.get("datacontenttype", "application/json"))
    else:
        attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce_")}
        content_type = headers.get("content-type", "application/json")
        data = _data(raw, content_type)
    missing = [name for name in _REQUIRED if not attrs.get(name)]
    if missing:
        raise reject("bad_cloudevent", f"CloudEvent lacks required attribute(s): {', '.join(missing)}")
    not_text = [name for name in _REQUIRED if not isinstance(attrs[name], str)]
    if not_text:  # structured mode only: header values are always text
        raise reject("bad_cloudevent", f"CloudEvent attribute(s) {', '.join(not_text)} must be strings")
    if str(attrs["specversion"]) != "1.0":
        raise reject("bad_cloudevent", f"CloudEvents specversion {attrs['specversion']!r}, only '1.0' is read")
    extensions = {k: str(v) for k, v in attrs.items() if k not in (*_REQUIRED, "time")}
    extensions.setdefault("datacontenttype", content_type)
    time = attrs.get("time")
    return CloudEvent(
        id=str(attrs["id"]),
        type=str(attrs["type"]),
        source=str(attrs["source"]),
        time=str(time) if time else None,
        attributes=extensions,
        data=data,
    )


def _structured_data(envelope: dict[str, Any]) -> Any:
    if "data_base64" in envelope:
        try:
            raw = base64.b64decode(envelope["data_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise reject("bad_cloudevent", f"data_base64 is not base64: {exc}") from None
        return _data(raw, str(envelope.get("datacontenttype", "application/json")))
    return envelope.get("data")


def _data(raw: bytes, content_type: str) -> Any:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return _json(raw)
    raise reject("unknown_encoding", f"CloudEvent data content type {content_type!r} is not JSON")


def _json(raw: bytes) -> Any:
    return parse_json(_ANY, raw)
