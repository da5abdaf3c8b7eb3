"""The one place that reads the environment: ``Settings.from_env()``.

Every field documents its default and the ``INFERWATCH_*`` variable that sets it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse_bool(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); else ``ValueError``."""
    text = raw.strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


Range = tuple[Callable[[float], bool], str]
#: Numeric settings that may be 0 (a count or a wait that can be none); every other one must be > 0.
_MAY_BE_ZERO = frozenset({"false_alerts_per_model_per_day", "metrics_max_features", "warmup_events", "gpu_warmup_samples", "gpu_grace_seconds", "correlation_grace_seconds"})
#: Numeric settings with a range of their own.
_RANGES: dict[str, Range] = {
    "false_alarms_per_million": (lambda v: 0.0 < v < 1e6, "in (0, 1e6)"),
    "web_port": (lambda v: 1 <= v <= 65535, "in [1, 65535]"),
}


def _valid_range(name: str) -> Range:
    """The values numeric setting ``name`` accepts (never NaN, infinite or negative): a value out of them
    would otherwise surface later, on every message (a detector's ``ValueError``) or as a busy loop
    (a timer every 0 s)."""
    if name in _RANGES:
        return _RANGES[name]
    return (lambda v: v >= 0, ">= 0") if name in _MAY_BE_ZERO else (lambda v: v > 0, "> 0")


def _env(name: str, default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"env": f"INFERWATCH_{name}", "help": help_text})


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime settings; build with ``Settings.from_env()`` or directly in tests."""

    kafka_bootstrap: str = _env("KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated.")
    app_id: str = _env("APP_ID", "inferwatch", "Faust app id: consumer group and changelog topic prefix.")
    inference_topic: str = _env("INFERENCE_TOPIC", "inference.events", "Topic of inference events (key = model).")
    gpu_topic: str = _env("GPU_TOPIC", "gpu.metrics", "Topic of GPU samples (key = host).")
    alerts_topic: str = _env("ALERTS_TOPIC", "inferwatch.alerts", "Topic the alert records are published to.")
    deadletter_topic: str = _env("DEADLETTER_TOPIC", "inferwatch.deadletter", "Topic for messages that failed decoding.")
    control_topic: str = _env("CONTROL_TOPIC", "inferwatch.control", "Topic for reference reset/relearn commands.")
    max_message_bytes: int = _env("MAX_MESSAGE_BYTES", 1_048_576, "Larger messages are dead-lettered as oversized.")
    max_features: int = _env("MAX_FEATURES", 256, "Features per event accepted; more is dead-lettered.")
    max_event_ahead_seconds: float = _env("MAX_EVENT_AHEAD_SECONDS", 3600.0, "An event or sample timed more than this after its Kafka message's timestamp is dead-lettered (bad_timestamp): one far-future time would move the event-time clock that holds and resolves alerts ahead for good.")
    metrics_max_features: int = _env("METRICS_MAX_FEATURES", 50, "Distinct feature label values per model in metrics.")
    false_alarms_per_million: float = _env("FALSE_ALARMS_PER_MILLION", 1.0, "False-alarm budget per detector.")
    false_alerts_per_model_per_day: float = _env("FALSE_ALERTS_PER_MODEL_PER_DAY", 0.0, "With no change, false alerts per model version per day, spread over its detectors at its event rate, that of its first events, then spread again as it moves (0: off, every detector takes FALSE_ALARMS_PER_MILLION).")
    latency_whiten: bool = _env("LATENCY_WHITEN", True, "The latency detector scores values net of their lag-1 autocorrelation, so latency that wanders with load stays within the budget ('false': raw values, quicker on level shifts, but hundreds of false alarms per million on such latency).")
    latency_floor: bool = _env("LATENCY_FLOOR", True, "The latency detector looks for the latency's fixed part (a service time it never goes below) and scores the rest, whose spread does not change with load, so latency that wanders with load stays within the budget ('false': asinh of the latency as it is).")
    batch_size: int = _env("BATCH_SIZE", 1000, "Input records an agent takes per batch (at least, when that many are waiting; a batch holds whole fetches of up to twice as many).")
    batch_seconds: float = _env("BATCH_SECONDS", 0.5, "Longest wait to fill a batch.")
    session_timeout_seconds: float = _env("SESSION_TIMEOUT_SECONDS", 10.0, "A worker silent this long loses its partitions to the others.")
    snapshot_interval_seconds: float = _env("SNAPSHOT_INTERVAL_SECONDS", 5.0, "Detector state is written to its changelog at most this often (at once when alerts change).")
    max_state_bytes: int = _env("MAX_STATE_BYTES", 8 * 1024 * 1024, "Largest detector-state record (changelog topics are created to allow it).")
    baseline_dir: str = _env("BASELINE_DIR", "", "Folder of baseline files (*.jsonl / *.jsonl.gz of inference events, as replay reads): a model version first seen whose baseline holds at least WARMUP_EVENTS events takes its drift references from it instead of its first events ('': none).")
    warmup_events: int = _env("WARMUP_EVENTS", 2000, "Events per model version (latency: per version and host) learned before its detectors alarm.")
    gpu_warmup_samples: int = _env("GPU_WARMUP_SAMPLES", 1000, "Samples per GPU learned before its statistical alarms are raised (hard signals such as XID errors fire from the first).")
    resolve_after_seconds: float = _env("RESOLVE_AFTER_SECONDS", 120.0, "An alert resolves after its detector is quiet this long (event time).")
    gpu_grace_seconds: float = _env("GPU_GRACE_SECONDS", 15.0, "A GPU alert waits this long for a model incident to claim it.")
    correlation_grace_seconds: float = _env("CORRELATION_GRACE_SECONDS", 5.0, "A latency/confidence alert waits this long for GPU state to explain it.")
    correlation_window_seconds: float = _env("CORRELATION_WINDOW_SECONDS", 60.0, "GPU anomalies this close to a model incident correlate.")
    grafana_url: str = _env("GRAFANA_URL", "http://127.0.0.1:3000", "Grafana base URL for alert links ('' for none).")
    alertmanager_url: str = _env("ALERTMANAGER_URL", "http://127.0.0.1:9093", "Alertmanager base URL ('' disables).")
    alertmanager_resend_seconds: float = _env("ALERTMANAGER_RESEND_SECONDS", 60.0, "Firing alerts are re-sent to Alertmanager this often.")
    alertmanager_ttl_seconds: float = _env("ALERTMANAGER_TTL_SECONDS", 300.0, "endsAt of a firing alert is this far ahead.")
    data_dir: str = _env("DATA_DIR", os.path.join(tempfile.gettempdir(), "inferwatch"), "Where a worker keeps local files (Faust's data dir, one folder per app id).")
    web_port: int = _env("WEB_PORT", 6066, "Port of the worker's /metrics and /health endpoint.")
    web_host: str = _env("WEB_HOST", "127.0.0.1", "Interface the worker's web endpoint binds to.")
    kserve_join_ttl_seconds: float = _env("KSERVE_JOIN_TTL_SECONDS", 60.0, "How long a KServe request or response waits for its counterpart.")
    kserve_join_max_pending: int = _env("KSERVE_JOIN_MAX_PENDING", 10_000, "KServe halves (requests or responses) held waiting for their counterpart, at most (oldest dropped).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``INFERWATCH_*`` variables; unset ones keep their defaults.

        Raises ``SettingsError`` naming the variable when a value does not parse, or when a
        number is NaN, infinite or out of its range (:func:`_valid_range`).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name]
            kind = type(f.default)
            try:
                values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc
            if kind in (int, float):
                valid, text = _valid_range(f.name)
                if not (math.isfinite(values[f.name]) and valid(values[f.name])):
                    raise SettingsError(f"{name}={raw!r} must be {text}")
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, help)`` for every setting, for ``--help`` and docs."""
        return [(f.metadata["env"], repr(f.default), f.metadata["help"]) for f in fields(cls)]
