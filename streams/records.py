"""Typed event records: the contracts producers and consumers share.

These ``msgspec`` structs are the single definition of each record; the JSON
Schema files for producers (``streams/schemas/``) are generated from them by
``inferwatch schemas``.  Timestamps are epoch seconds (float) once decoded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from streams.timestamps import to_epoch_seconds

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "DeadLetter",
    "FeatureValue",
    "GpuSample",
    "InferenceEvent",
]

#: A feature's value: number, category (string), flag, or null for missing.
FeatureValue = float | str | bool | None

ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=256, description="Model name (Kafka key).")]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]


class InferenceEvent(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One inference request, as served (topic ``inference.events``, key = model).

    Required: ``ts``, ``model``, ``latency_ms``.  ``ts`` may arrive as epoch
    seconds (ms/µs/ns told apart by magnitude) or RFC 3339; after construction it
    is always epoch seconds.  Fields not named here are kept in ``extra`` and
    survive a round trip.
    """

    ts: float | str
    model: ModelName
    latency_ms: NonNegative
    request_id: str | None = None
    model_version: str | None = None
    host: str | None = None
    gpu_uuid: str | None = None
    gpu: Annotated[int, msgspec.Meta(ge=0)] | None = None
    features: dict[str, FeatureValue] = {}
    prediction: str | int | float | bool | None = None
    confidence: Probability | None = None
    probabilities: list[Probability] | None = None
    label: str | int | float | bool | None = None
    ttft_ms: NonNegative | None = None
    tokens_in: Annotated[int, msgspec.Meta(ge=0)] | None = None
    tokens_out: Annotated[int, msgspec.Meta(ge=0)] | None = None
    extra: dict[str, Any] = {}

    def __post_init__(self) -> None:
        self.ts = to_epoch_seconds(self.ts)

    @property
    def version(self) -> str:
        """``model_version``, or ``"unknown"`` when the producer sent none."""
        return self.model_version or "unknown"


class GpuSample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One sample of one GPU (topic ``gpu.metrics``, key = host).

    ``fields`` holds DCGM field names (``DCGM_FI_DEV_GPU_UTIL``, ...) to values;
    on the wire they are top-level keys next to ``ts``/``host``/``gpu``/``uuid``,
    and other string-valued keys (e.g. ``modelName``) are kept in ``labels``.
    ``ts`` is normalised to epoch seconds as for ``InferenceEvent``.
    """

    ts: float | str
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    gpu: Annotated[int, msgspec.Meta(ge=0)]
    uuid: str | None = None
    fields: dict[str, float] = {}
    labels: dict[str, str] = {}

    def __post_init__(self) -> None:
        self.ts = to_epoch_seconds(self.ts)


ALERT_KINDS = (
    "input_drift",
    "confidence_drift",
    "prediction_drift",
    "latency_anomaly",
    "gpu_anomaly",
    "correlated",
)

AlertKind = Literal[
    "input_drift", "confidence_drift", "prediction_drift", "latency_anomaly", "gpu_anomaly", "correlated"
]


class Alert(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One alert, published to ``inferwatch.alerts`` and forwarded to Alertmanager.

    ``fingerprint`` is stable for the same incident identity (kind + model +
    version + feature/host/gpu) and is the dedup key on both outputs.
    """

    fingerprint: str
    kind: AlertKind
    status: Literal["firing", "resolved"]
    severity: Literal["info", "warning", "critical"]
    model: str | None = None
    version: str | None = None
    feature: str | None = None
    host: str | None = None
    gpu: str | None = None
    score: float
    threshold: float
    statistic: str = ""
    starts_at: float
    ends_at: float | None = None
    summary: str = ""
    evidence: dict[str, Any] = {}
    gpu_context: list[dict[str, Any]] = []
    dashboard_url: str | None = None


class DeadLetter(msgspec.Struct, kw_only=True):
    """A message that could not be decoded, with where it came from and why.

    ``reason`` is a short stable code (a metric label); ``detail`` is the
    human-readable explanation; ``value`` holds the original bytes.
    """

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes = b""
    headers: list[tuple[str, bytes | None]] = []  # a Kafka header value may be null
    received_at: float = 0.0
