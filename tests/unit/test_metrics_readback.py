"""Reading a worker's /metrics text back (benchmarks and tests count processed events with it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.metrics import Metrics, events_per_model, sample_sum


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
