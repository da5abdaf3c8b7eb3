"""Reading a worker's /metrics text back (benchmarks and tests count processed events with it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.metrics import Metrics, events_per_model, sample_sum
from streams.records import GpuSample, InferenceEvent


def test_counts_read_back_from_a_real_exposition_match_what_was_counted() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_features=4)
    metrics.events.labels("fraud", "v1").inc(3)
    metrics.events.labels("fraud", "v2").inc(2)
    metrics.events.labels("churn", "v1").inc(1000)
    metrics.refetched.labels("inference.events").inc(2)
    metrics.refetched.labels("gpu.metrics").inc()
    text = generate_latest(registry).decode()

    assert events_per_model(text) == {"fraud": 5, "churn": 1000}
    assert sample_sum(text, "inferwatch_consumer_seeks_total") == 3.0  # not its _created samples
    assert sample_sum(text, "inferwatch_no_such_metric_total") == 0.0
    assert events_per_model("") == {}


def test_the_kserve_joiners_running_drop_count_grows_the_counter_by_its_increase() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.observe_kserve(dropped=2, pending=5)
    metrics.observe_kserve(dropped=2, pending=1)  # nothing new dropped
    metrics.observe_kserve(dropped=5, pending=0)
    text = generate_latest(registry).decode()
    assert sample_sum(text, "inferwatch_kserve_halves_dropped_total") == 5.0
    assert sample_sum(text, "inferwatch_kserve_halves_pending") == 0.0


def test_an_event_with_probabilities_only_is_counted_in_the_confidence_histogram_at_its_top_class() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.observe_events([
        InferenceEvent(ts=1.7e9, model="fraud", latency_ms=5.0, probabilities=[0.1, 0.62, 0.28]),
        InferenceEvent(ts=1.7e9, model="fraud", latency_ms=5.0, confidence=0.97, probabilities=[0.5, 0.5]),
        InferenceEvent(ts=1.7e9, model="fraud", latency_ms=5.0),  # neither: not counted
    ])
    text = generate_latest(registry).decode()
    assert sample_sum(text, "inferwatch_inference_confidence_ratio_count") == 2.0
    assert abs(sample_sum(text, "inferwatch_inference_confidence_ratio_sum") - (0.62 + 0.97)) < 1e-9


def test_the_older_dcgm_throttle_field_is_re_exported_as_the_clock_event_reasons() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.observe_gpu(GpuSample(ts=1.7e9, host="h1", gpu=0, fields={"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": 64.0}))
    metrics.observe_gpu(GpuSample(ts=1.7e9, host="h1", gpu=1, fields={"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": 64.0, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": 8.0}))
    text = generate_latest(registry).decode()
    assert 'inferwatch_gpu_clock_event_reasons{gpu="0",host="h1",uuid=""} 64.0' in text
    assert 'inferwatch_gpu_clock_event_reasons{gpu="1",host="h1",uuid=""} 8.0' in text  # the current name wins
