"""Prometheus metrics of the worker, on an injected ``CollectorRegistry``.

Names follow Prometheus conventions (base units, ``_total`` counters, ``_ratio``).
Labels are bounded: ``model``/``version``/``host``/``gpu``/``uuid`` come from the
deployment, ``feature`` is capped per model by ``metrics_max_features`` (later
features share the label ``_other``), predicted classes likewise by
``MAX_CLASSES``.  GPU samples are re-exported with the same ``host``/``gpu``/
``uuid`` labels the model series use, and ``inferwatch_model_gpu_info`` says which
GPUs serve which model, so dashboards can join the two with ``on(host, gpu)``.
"""

from __future__ import annotations

import re
from collections import Counter as CounterOf
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.records import GpuSample, InferenceEvent

__all__ = ["GPU_GAUGES", "MAX_CLASSES", "OTHER", "Metrics", "events_per_model", "observe_many", "sample_sum"]

OTHER = "_other"
MAX_CLASSES = 20

#: Latency buckets in seconds: 1 ms to 30 s, roughly x2.5 apart, dense where online models live.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Confidence buckets: 0.05 wide, so a heatmap shows the distribution's shape.
CONFIDENCE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

#: DCGM field -> (metric name, help, scale to base units).
GPU_GAUGES: dict[str, tuple[str, str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("inferwatch_gpu_utilization_ratio", "GPU utilisation (0-1).", 0.01),
    "DCGM_FI_DEV_FB_USED": ("inferwatch_gpu_memory_used_bytes", "Framebuffer memory used.", 1024.0 * 1024.0),
    "DCGM_FI_DEV_FB_FREE": ("inferwatch_gpu_memory_free_bytes", "Framebuffer memory free.", 1024.0 * 1024.0),
    "DCGM_FI_DEV_GPU_TEMP": ("inferwatch_gpu_temperature_celsius", "GPU temperature.", 1.0),
    "DCGM_FI_DEV_POWER_USAGE": ("inferwatch_gpu_power_watts", "Power draw.", 1.0),
    "DCGM_FI_DEV_SM_CLOCK": ("inferwatch_gpu_sm_clock_hertz", "SM clock.", 1e6),
    "DCGM_FI_DEV_MEM_CLOCK": ("inferwatch_gpu_memory_clock_hertz", "Memory clock.", 1e6),
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": ("inferwatch_gpu_clock_event_reasons", "Clock event (throttle) reasons bitmask.", 1.0),
    "DCGM_FI_DEV_XID_ERRORS": ("inferwatch_gpu_last_xid", "Last XID error code (0 = none).", 1.0),
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": ("inferwatch_gpu_ecc_uncorrectable_errors", "Volatile double-bit (uncorrectable) ECC errors.", 1.0),
}

#: Older DCGM names of a re-exported field, read when a sample lacks the current name.
GPU_FIELD_ALIASES = {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"}

_GPU_LABELS = ("host", "gpu", "uuid")


def _gpu_index(event: InferenceEvent) -> str | None:
    """The index of the GPU the event names (``None``: it names none by index)."""
    return None if event.gpu is None else str(event.gpu)


def _top_confidence(event: InferenceEvent) -> float | None:
    """The event's confidence, else its top-class probability (``None``: it has neither)."""
    if event.confidence is not None:
        return event.confidence
    return max(event.probabilities) if event.probabilities else None


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for each of ``values`` (a labelled child): one increment per bucket, not per value.

    Uses prometheus_client's child internals (``_upper_bounds``, ``_buckets``, ``_sum``);
    falls back to ``observe`` per value where they are missing.
    """
    if not values:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    if bounds is None or not hasattr(histogram, "_buckets") or not hasattr(histogram, "_sum"):
        for value in values:
            histogram.observe(value)
        return
    histogram._raise_if_not_observable()
    histogram._sum.inc(sum(values))
    slots = np.searchsorted(bounds, values, side="left")  # the first bound >= value; NaN lands past the end, as in observe
    for i, n in enumerate(np.bincount(slots, minlength=len(bounds) + 1)[: len(bounds)].tolist()):
        if n:
            histogram._buckets[i].inc(n)


class Metrics:
    """Every metric family the worker exports; one instance per registry."""

    def __init__(self, registry: CollectorRegistry, *, max_features: int = 50) -> None:
        self.registry = registry
        self.max_features = max_features
        self._features: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._classes: dict[tuple[str, str], set[str]] = defaultdict(set)
        r = registry
        self.events = Counter("inferwatch_events_total", "Inference events consumed.", ["model", "version"], registry=r)
        self.gpu_samples = Counter("inferwatch_gpu_samples_total", "GPU samples consumed.", ["host"], registry=r)
        self.dead_letters = Counter("inferwatch_dead_letters_total", "Messages sent to the dead-letter topic.", ["topic", "reason"], registry=r)
        self.redelivered = Counter(
            "inferwatch_redelivered_messages_total", "Input messages consumed again after processing (dropped, not processed twice).",
            ["topic"], registry=r,
        )
        self.misrouted = Counter(
            "inferwatch_misrouted_records_total",
            "Input records of a model (host) that arrived on another partition than its previous ones: the Kafka key is not the model (host).",
            ["topic"], registry=r,
        )
        self.refetched = Counter(
            "inferwatch_consumer_seeks_total", "Times the consumer skipped input messages and was sent back to the first one.",
            ["topic"], registry=r,
        )
        self.latency = Histogram(
            "inferwatch_inference_latency_seconds", "Inference latency as reported by the model server.",
            ["model", "version", "host"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.confidence = Histogram(
            "inferwatch_inference_confidence_ratio", "Model confidence (top-class probability).",
            ["model", "version"], buckets=CONFIDENCE_BUCKETS, registry=r,
        )
        self.predictions = Counter("inferwatch_predictions_total", "Predictions by predicted class.", ["model", "version", "prediction"], registry=r)
        self.drift_score = Gauge(
            "inferwatch_drift_score", "Drift score per feature; alerts at the threshold.",
            ["model", "version", "feature", "kind"], registry=r,
        )
        self.drift_threshold = Gauge("inferwatch_drift_threshold", "Drift score threshold.", ["model", "version", "feature", "kind"], registry=r)
        self.false_alarm_budget = Gauge(
            "inferwatch_false_alarms_per_million",
            "False alarms per million events each of a model version's detectors may raise with no change "
            "(INFERWATCH_FALSE_ALARMS_PER_MILLION, or its share of a daily budget at its event rate).", ["model", "version"], registry=r)
        self.latency_score = Gauge("inferwatch_latency_anomaly_score", "Latency anomaly score per model and host.", ["model", "version", "host"], registry=r)
        self.latency_threshold = Gauge("inferwatch_latency_anomaly_threshold", "Latency anomaly score threshold.", ["model", "version", "host"], registry=r)
        self.gpu_score = Gauge("inferwatch_gpu_anomaly_score", "GPU anomaly score.", list(_GPU_LABELS), registry=r)
        self.gpu_threshold = Gauge("inferwatch_gpu_anomaly_threshold", "GPU anomaly score threshold.", list(_GPU_LABELS), registry=r)
        self.gpu_fields = {
            field: Gauge(name, help_, list(_GPU_LABELS), registry=r) for field, (name, help_, _) in GPU_GAUGES.items()
        }
        self.model_gpu = Gauge(
            "inferwatch_model_gpu_info", "1 for each GPU that served the model recently (join key).",
            ["model", "version", "host", "gpu", "uuid"], registry=r,
        )
        self.alerts = Counter("inferwatch_alerts_total", "Alert transitions published.", ["kind", "severity", "status"], registry=r)
        self.alerts_firing = Gauge("inferwatch_alerts_firing", "Alerts currently firing.", ["kind", "model"], registry=r)
        self.consumer_lag = Gauge("inferwatch_consumer_lag_messages", "Messages behind the end of each input partition.", ["topic", "partition"], registry=r)
        self.reference_commands = Counter("inferwatch_reference_commands_total", "Reference commands applied (reset / relearn).", ["action"], registry=r)
        self.state_restored = Counter("inferwatch_state_restored_total", "States restored from the changelogs, by kind: model and host detectors, kserve_half (waiting KServe halves).", ["kind"], registry=r)
        self.delivered = Counter("inferwatch_alertmanager_deliveries_total", "Alert batches accepted by Alertmanager.", registry=r)
        self.delivery_failures = Counter("inferwatch_alertmanager_delivery_failures_total", "Failed Alertmanager posts (retried).", registry=r)
        self.kserve_dropped = Counter(
            "inferwatch_kserve_halves_dropped_total",
            "KServe request/response halves dropped unjoined: expired, over the pending limit, or replaced by one with the same id.", registry=r,
        )
        self.kserve_pending = Gauge("inferwatch_kserve_halves_pending", "KServe request/response halves waiting for their counterpart.", registry=r)
        self._kserve_dropped_seen = 0

    # -- helpers that keep labels bounded ----------------------------------------
    def feature_label(self, model: str, version: str, feature: str) -> str:
        """``feature`` while fewer than ``max_features`` are known for the model, else ``_other``."""
        seen = self._features[(model, version)]
        if feature in seen or len(seen) < self.max_features:
            seen.add(feature)
            return feature
        return OTHER

    def class_label(self, model: str, version: str, prediction: object) -> str:
        """The predicted class as a label, capped at ``MAX_CLASSES`` per model."""
        value = str(prediction)
        seen = self._classes[(model, version)]
        if value in seen or len(seen) < MAX_CLASSES:
            seen.add(value)
            return value
        return OTHER

    # -- per record ---------------------------------------------------------
    def observe_event(self, event: InferenceEvent) -> None:
        """Counters and histograms for one inference event."""
        self.observe_events([event])

    def observe_kserve(self, dropped: int, pending: int) -> None:
        """The KServe joiner's running count of ``dropped`` halves (the counter grows by the increase since
        the last call) and its ``pending`` ones."""
        if dropped > self._kserve_dropped_seen:
            self.kserve_dropped.inc(dropped - self._kserve_dropped_seen)
        self._kserve_dropped_seen = dropped
        self.kserve_pending.set(pending)

    def observe_events(self, events: Sequence[InferenceEvent], gpu_of: Callable[[InferenceEvent], str | None] = _gpu_index) -> None:
        """Counters and histograms for a batch: label lookups once per group, bucket counts in one numpy pass.
        ``gpu_of`` gives the index of the GPU an event with a host ran on (``None``: not known), for
        ``inferwatch_model_gpu_info``."""
        groups: dict[tuple[str, str, str], list[InferenceEvent]] = defaultdict(list)
        for event in events:
            groups[(event.model, event.version, event.host or "unknown")].append(event)
        for (model, version, host), batch in groups.items():
            self.events.labels(model, version).inc(len(batch))
            observe_many(self.latency.labels(model, version, host), [e.latency_ms / 1000.0 for e in batch])
            observe_many(self.confidence.labels(model, version), [c for c in map(_top_confidence, batch) if c is not None])
            classes: CounterOf[str] = CounterOf()
            for prediction, n in CounterOf(e.prediction for e in batch if e.prediction is not None).items():
                classes[self.class_label(model, version, prediction)] += n  # first-seen order, as event by event
            for label, n in classes.items():
                self.predictions.labels(model, version, label).inc(n)
            for gpu, uuid in {(g, e.gpu_uuid or "") for e in batch if e.host is not None and (g := gpu_of(e)) is not None}:
                self.model_gpu.labels(model, version, host, gpu, uuid).set(1)

    def observe_gpu(self, sample: GpuSample) -> None:
        """Re-export one GPU sample's fields in base units."""
        labels = (sample.host, str(sample.gpu), sample.uuid or "")
        self.gpu_samples.labels(sample.host).inc()
        for field, value in sample.fields.items():
            current = GPU_FIELD_ALIASES.get(field)
            if current is not None:
                if current in sample.fields:
                    continue  # the current name wins
                field = current
            spec = GPU_GAUGES.get(field)
            if spec is not None:
                self.gpu_fields[field].labels(*labels).set(value * spec[2])


_EVENTS_SAMPLE = re.compile(r'^inferwatch_events_total\{model="([^"]+)",version="[^"]*"\} ([0-9.e+]+)$', re.M)


def events_per_model(exposition: str) -> CounterOf[str]:
    """Events processed per model (summed over versions), read back from a worker's ``/metrics`` text."""
    counts: CounterOf[str] = CounterOf()
    for model, value in _EVENTS_SAMPLE.findall(exposition):
        counts[model] += int(float(value))
    return counts


def sample_sum(exposition: str, name: str) -> float:
    """The sum of every sample named ``name`` (any labels) in a ``/metrics`` text; 0 when there is none."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+|NaN)$", re.M)
    return sum(float(v) for v in pattern.findall(exposition) if v != "NaN")
