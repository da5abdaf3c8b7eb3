"""Decode one Kafka message of either input topic into records, whatever its encoding.

``InferenceDecoder.decode`` and ``GpuDecoder.decode`` take the message value,
headers and broker timestamp and return the records it carries (possibly none:
a KServe request waiting for its response), or raise ``Rejected``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from streams.decoding.cloudevents import Headers, headers_to_dict, is_cloudevent, parse_cloudevent
from streams.decoding.kserve import KServeJoiner, Released, is_kserve
from streams.decoding.native import decode_gpu_sample, decode_inference_event, gpu_sample_from_object
from streams.decoding.reasons import check_not_ahead, parse_json, reject
from streams.decoding.telegraf import is_telegraf, samples_from_telegraf
from streams.records import GpuSample, InferenceEvent
from streams.settings import Settings

__all__ = ["GpuDecoder", "InferenceDecoder", "check_envelope"]

_ANY = msgspec.json.Decoder()
#: First byte of Confluent Schema Registry framing (Avro / Protobuf / JSON Schema).
_CONFLUENT_MAGIC = 0x00


def check_envelope(raw: bytes | None, headers: Mapping[str, str], max_bytes: int) -> bytes:
    """Rules every message must pass before parsing: present, not too big, readable encoding."""
    if not raw:
        raise reject("empty", "the message value is empty (or a tombstone)")
    if len(raw) > max_bytes:
        raise reject("oversized", f"{len(raw)} bytes, at most {max_bytes} allowed (INFERWATCH_MAX_MESSAGE_BYTES)")
    encoding = headers.get("content-encoding")
    if encoding and encoding.lower() != "identity":
        raise reject("unknown_encoding", f"content-encoding {encoding!r}: send uncompressed JSON (use Kafka compression)")
    if raw[0] == _CONFLUENT_MAGIC:
        raise reject("unknown_encoding", "Confluent Schema Registry framing (magic byte 0): send plain JSON")
    media = headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    if not (media.endswith("json") or media == "text/plain"):
        raise reject("unknown_encoding", f"content-type {media!r}: inferwatch reads JSON")
    return raw


class InferenceDecoder:
    """Native JSON events and KServe payload-logger CloudEvents from the inference topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kserve = KServeJoiner(
            ttl_seconds=settings.kserve_join_ttl_seconds,
            max_pending=settings.kserve_join_max_pending,
            max_features=settings.max_features,
            max_ahead_seconds=settings.max_event_ahead_seconds,
        )

    def decode(self, raw: bytes | None, headers: Headers = None, timestamp: float = 0.0, source: object = None) -> list[InferenceEvent]:
        """Records in one message; ``timestamp`` (the message's Kafka timestamp, epoch s; 0: unknown) stands
        in for a missing CloudEvent time, and no event may be timed more than
        ``max_event_ahead_seconds`` after it.  ``source``: the caller's handle on the message, kept
        with a waiting KServe half (see :meth:`KServeJoiner.add`)."""
        hdrs = headers_to_dict(headers)
        raw = check_envelope(raw, hdrs, self.settings.max_message_bytes)
        if is_cloudevent(hdrs):
            event = parse_cloudevent(raw, hdrs)
            if not is_kserve(event):
                raise reject("bad_cloudevent", f"CloudEvent type {event.type!r} is not a KServe request/response")
            return self.kserve.add(event, timestamp, source)
        event = decode_inference_event(raw, max_features=self.settings.max_features)
        check_not_ahead(event.ts, timestamp, self.settings.max_event_ahead_seconds)
        return [event]

    def take_released(self) -> list[Released]:
        """KServe halves let go unjoined since the last call (:meth:`KServeJoiner.take_released`)."""
        return self.kserve.take_released()

    def expire(self) -> None:
        """Let go the KServe halves that waited too long (:meth:`KServeJoiner.expire`)."""
        self.kserve.expire()

    def waiting(self) -> list[object]:
        """Sources of the KServe halves waiting (:meth:`KServeJoiner.waiting`)."""
        return self.kserve.waiting()

    def track(self) -> None:
        """Start recording which KServe halves start or stop waiting (:meth:`KServeJoiner.track`)."""
        self.kserve.track()

    def take_changes(self) -> list[tuple[object, bool]]:
        """KServe halves that started or stopped waiting since the last call (:meth:`KServeJoiner.take_changes`)."""
        return self.kserve.take_changes()

    def forget(self, which: Callable[[object], bool]) -> int:
        """Let waiting KServe halves go silently (:meth:`KServeJoiner.forget`)."""
        return self.kserve.forget(which)


class GpuDecoder:
    """Native JSON GPU samples and Telegraf ``nvidia_smi`` JSON from the GPU topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def decode(self, raw: bytes | None, headers: Headers = None, timestamp: float = 0.0, source: object = None) -> list[GpuSample]:
        """Records in one message (Telegraf batches carry several); none may be timed more than
        ``max_event_ahead_seconds`` after ``timestamp`` (the message's Kafka timestamp; 0: unknown).
        ``source`` is not used: a GPU message is decoded on its own."""
        hdrs = headers_to_dict(headers)
        raw = check_envelope(raw, hdrs, self.settings.max_message_bytes)
        if b'"nvidia_smi"' not in raw and b'"metrics"' not in raw:
            samples = [decode_gpu_sample(raw)]
        else:
            obj = parse_json(_ANY, raw)
            samples = samples_from_telegraf(obj) if is_telegraf(obj) else [gpu_sample_from_object(obj)]
        for sample in samples:
            check_not_ahead(sample.ts, timestamp, self.settings.max_event_ahead_seconds)
        return samples

    def take_released(self) -> list[Released]:
        """None: a GPU message is never held for another."""
        return []

    def expire(self) -> None:
        """Nothing waits."""

    def waiting(self) -> list[object]:
        """None: nothing waits."""
        return []

    def track(self) -> None:
        """Nothing waits: nothing to record."""

    def take_changes(self) -> list[tuple[object, bool]]:
        """None: nothing waits."""
        return []

    def forget(self, which: Callable[[object], bool]) -> int:
        """Nothing waits to be let go."""
        return 0
