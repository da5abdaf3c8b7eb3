"""KServe payload-logger CloudEvents: request and response joined on ``ce_id``.

Each half is validated when it arrives (so a bad half is rejected with its own
bytes) and held until its counterpart comes (its tensors, not its parsed body);
then one ``InferenceEvent`` per batch row is built: features from the request's
input tensors, prediction, probabilities and confidence from the response's
output tensors, latency from the two events' ``time`` attributes (or arrival
times when absent).
Unmatched halves are dropped after ``ttl_seconds`` (checked when the next half
arrives, and by :meth:`KServeJoiner.expire`, which a worker's timer calls) or when
more than ``max_pending`` wait, oldest first, and counted in ``dropped``, as is a
half replaced by another with the same id and type.  A
pair that cannot be joined is rejected with the second half.  Every waiting half
let go unjoined (dropped, or the first of a pair that cannot be joined) is handed
out by :meth:`KServeJoiner.take_released`, for a dead letter.  :meth:`KServeJoiner.waiting`
lists the waiting halves' sources, :meth:`KServeJoiner.take_changes` (once :meth:`KServeJoiner.track`
is called) those that started or stopped waiting since it was last called (a worker persists
them, ``streams.waiting_halves``), and :meth:`KServeJoiner.forget` lets some go silently (their
partition's next owner restores them).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from streams.decoding.cloudevents import CloudEvent
from streams.decoding.oip import Tensor, parse_tensors
from streams.decoding.reasons import check_not_ahead, from_validation_error, reject
from streams.errors import Rejected
from streams.records import InferenceEvent
from streams.timestamps import to_epoch_seconds

__all__ = ["REQUEST_TYPE", "RESPONSE_TYPE", "KServeJoiner", "is_kserve"]

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
_PROB_TOLERANCE = 1e-3
#: What a joined pair reads of the response body besides its tensors (a waiting half keeps only these).
_BODY_KEPT = ("model_name", "model_version")


def is_kserve(event: CloudEvent) -> bool:
    """True for a KServe payload-logger request or response event."""
    return event.type in (REQUEST_TYPE, RESPONSE_TYPE)


@dataclass(slots=True)
class _Half:
    event: CloudEvent
    tensors: list[Tensor]
    at: float  # epoch seconds: the event's time attribute, else arrival
    arrived: float  # monotonic clock, for expiry
    source: object = None  # the caller's handle on the message, for a dead letter should it be let go


@dataclass(frozen=True, slots=True)
class Released:
    """A waiting half let go unjoined: the caller's ``source`` of it, the reason code of its dead
    letter, and that letter's detail given where the message being decoded sits (``now``; ``None``:
    let go by an expiry check, no message being decoded)."""

    source: object
    reason: str
    detail: Callable[[str | None], str]


class KServeJoiner:
    """Joins KServe request/response CloudEvents into inference events."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 60.0,
        max_pending: int = 10_000,
        max_features: int = 256,
        max_ahead_seconds: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_pending = max_pending
        self.max_features = max_features
        self.max_ahead_seconds = max_ahead_seconds
        self._clock = clock
        self._pending: OrderedDict[tuple[str, str], _Half] = OrderedDict()
        self.dropped = 0
        self._released: list[Released] = []  # halves let go unjoined since take_released
        self._changes: list[tuple[object, bool]] | None = None  # since take_changes, once track is called

    @property
    def pending(self) -> int:
        """Halves waiting for their counterpart."""
        return len(self._pending)

    def add(self, event: CloudEvent, received_at: float, source: object = None) -> list[InferenceEvent]:
        """Take one half; return the joined events when it completes a pair, else ``[]``.

        ``source`` is kept with a waiting half and handed back by :meth:`take_released` if it is
        let go unjoined: dropped, or the pair cannot be joined (its message was consumed earlier
        and must be dead-lettered too).
        """
        if event.type not in (REQUEST_TYPE, RESPONSE_TYPE):
            raise reject("bad_cloudevent", f"CloudEvent type {event.type!r} is not a KServe request/response")
        is_request = event.type == REQUEST_TYPE
        tensors = parse_tensors(event.data, "inputs" if is_request else "outputs")
        half = _Half(
            event=replace(event, data={k: event.data[k] for k in _BODY_KEPT if k in event.data}),  # the tensors hold the rest
            tensors=tensors,
            at=_event_time(event, received_at, self.max_ahead_seconds),
            arrived=self._clock(),
            source=source,
        )
        if is_request:
            width = len(_feature_names(half.tensors))
            if width > self.max_features:
                raise reject("too_many_features", f"{width} features, at most {self.max_features}")
        self.expire()
        other_kind = RESPONSE_TYPE if is_request else REQUEST_TYPE
        other = self._pending.pop((event.id, other_kind), None)
        if other is None:
            replaced = self._pending.pop((event.id, event.type), None)
            if replaced is not None:  # the same half again (a retry?): the newer one waits, the older is dropped
                self._drop(replaced)
            self._pending[(event.id, event.type)] = half
            self._changed(half, True)
            while len(self._pending) > self.max_pending:
                self._drop(self._pending.popitem(last=False)[1])
            return []
        self._changed(other, False)
        request, response = (half, other) if is_request else (other, half)
        try:
            return self._join(request, response)
        except Rejected as exc:
            detail = exc.detail
            self._release(other, exc.reason, lambda now: f"with its counterpart {now}: {detail}")  # raised while a message is decoded: now is set
            raise

    def expire(self) -> None:
        """Let go the halves that have waited longer than ``ttl_seconds``: each :meth:`add` does this
        first, and a worker's timer too, so a half is let go on time when no other KServe half comes."""
        deadline = self._clock() - self.ttl_seconds
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.arrived >= deadline:
                break
            self._drop(self._pending.popitem(last=False)[1])

    def waiting(self) -> list[object]:
        """The ``source`` of every waiting half given one, oldest first (what a worker persists)."""
        return [half.source for half in self._pending.values() if half.source is not None]

    def forget(self, which: Callable[[object], bool]) -> int:
        """Let go, silently (not dropped, not released), the waiting halves whose ``source`` ``which``
        selects: their partition went to another worker, which restores them.  Returns how many."""
        gone = [key for key, half in self._pending.items() if half.source is not None and which(half.source)]
        for key in gone:
            self._changed(self._pending.pop(key), False)
        return len(gone)

    def track(self) -> None:
        """Start recording which halves start or stop waiting, for :meth:`take_changes` (call it
        regularly from then on: the record grows until it is taken)."""
        if self._changes is None:
            self._changes = []

    def take_changes(self) -> list[tuple[object, bool]]:
        """The ``source`` of each half given one that started (``True``) or stopped (``False``) waiting
        since the last call, in that order: joined, let go and forgotten halves all stop.  Replayed in
        order over :meth:`waiting` as it was at the last call, they give :meth:`waiting` now.  Empty
        until :meth:`track` is called."""
        out = self._changes or []
        if self._changes is not None:
            self._changes = []
        return out

    def _changed(self, half: _Half, waiting: bool) -> None:
        if self._changes is not None and half.source is not None:
            self._changes.append((half.source, waiting))

    def _drop(self, half: _Half) -> None:
        """Let ``half`` go unjoined: expired, over ``max_pending``, or replaced by one with its id and type."""
        self.dropped += 1
        self._changed(half, False)
        self._release(half, "unjoined", lambda now: f"no counterpart joined it (dropped {f'while {now} was decoded' if now else 'at an expiry check'})")

    def _release(self, half: _Half, reason: str, detail: Callable[[str | None], str]) -> None:
        if half.source is not None:
            self._released.append(Released(half.source, reason, detail))

    def take_released(self) -> list[Released]:
        """The halves let go unjoined since the last call, in the order they were let go."""
        out, self._released = self._released, []
        return out

    def _join(self, request: _Half, response: _Half) -> list[InferenceEvent]:
        batch = {t.shape[0] for t in request.tensors + response.tensors}
        if len(batch) != 1:
            raise reject("bad_tensor", f"KServe {request.event.id}: tensors disagree on batch size {sorted(batch)}")
        rows = batch.pop()
        body = response.event.data if isinstance(response.event.data, dict) else {}
        attrs = request.event.attributes
        model = attrs.get("inferenceservicename") or body.get("model_name")
        if not model:
            raise reject("missing_field", f"KServe {request.event.id}: no inferenceservicename nor model_name")
        if response.at < request.at and request.event.time is not None and response.event.time is not None:
            # Both logged by the same agent: a response before its request is a broken clock or record.
            raise reject("out_of_range", f"KServe {request.event.id}: response time {response.event.time} is before request time {request.event.time}")
        base: dict[str, Any] = {
            "ts": request.at,
            "model": model,
            "latency_ms": max(0.0, (response.at - request.at) * 1000.0),  # < 0 only against a Kafka timestamp
            "extra": {f"ce_{k}": v for k, v in attrs.items() if k != "inferenceservicename"},
        }
        if body.get("model_version"):
            base["model_version"] = str(body["model_version"])
        events = []
        for b in range(rows):
            fields = dict(base)
            fields["request_id"] = request.event.id if rows == 1 else f"{request.event.id}#{b}"
            fields["features"] = _features(request.tensors, b)
            fields.update(_outputs(response.tensors, b))
            try:
                events.append(msgspec.convert(fields, InferenceEvent))
            except msgspec.ValidationError as exc:
                raise from_validation_error(exc) from None
        return events


def _event_time(event: CloudEvent, received_at: float, max_ahead: float) -> float:
    """The CloudEvent's time (``received_at``, the Kafka timestamp, when it has none), at most
    ``max_ahead`` seconds after ``received_at``."""
    if event.time is None:
        return received_at
    try:
        at = to_epoch_seconds(event.time)
    except ValueError as exc:
        raise reject("bad_timestamp", f"CloudEvent time: {exc}") from None
    check_not_ahead(at, received_at, max_ahead)
    return at


def _column_names(t: Tensor) -> list[str]:
    """Feature names of a tensor's columns: its name for a width of 1, else ``name[j]``."""
    return [t.name] if t.width == 1 else [f"{t.name}[{j}]" for j in range(t.width)]


def _features(tensors: list[Tensor], row: int) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for t in tensors:
        features.update(zip(_column_names(t), t.rows[row]))
    return features


def _feature_names(tensors: list[Tensor]) -> set[str]:
    """The feature names ``_features`` gives every row of these tensors (one set: rows share them)."""
    return {name for t in tensors for name in _column_names(t)}


def _outputs(tensors: list[Tensor], row: int) -> dict[str, Any]:
    """prediction / probabilities / confidence of one batch row."""
    out: dict[str, Any] = {}
    for t in tensors:
        values = t.rows[row]
        if t.width == 1 and "prediction" not in out:
            out["prediction"] = values[0]
        elif t.width > 1 and "probabilities" not in out and _is_distribution(values):
            out["probabilities"] = [float(v) for v in values]
    probs = out.get("probabilities")
    if probs:
        out["confidence"] = max(probs)
        out.setdefault("prediction", probs.index(out["confidence"]))
    return out


def _is_distribution(values: list[Any]) -> bool:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in values):
        return False
    return abs(math.fsum(values) - 1.0) <= _PROB_TOLERANCE
