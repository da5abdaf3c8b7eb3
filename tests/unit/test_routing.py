"""Records of one model (host) arriving on more than one input partition are counted and logged once."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.routing import Routing


def _misrouted(metrics: Metrics, topic: str) -> float:
    return metrics.misrouted.labels(topic)._value.get()


def test_a_model_on_a_second_partition_is_counted_each_time_and_logged_once(caplog) -> None:
    metrics = Metrics(CollectorRegistry())
    routing = Routing(metrics)
    with caplog.at_level(logging.WARNING, logger="streams.routing"):
        routing.see("inference.events", 0, "model", "fraud")
        routing.see("inference.events", 0, "model", "fraud")
        routing.see("inference.events", 1, "model", "churn")
        assert _misrouted(metrics, "inference.events") == 0 and caplog.records == []
        routing.see("inference.events", 2, "model", "fraud")
        routing.see("inference.events", 0, "model", "fraud")
        routing.see("inference.events", 0, "model", "fraud")
    assert _misrouted(metrics, "inference.events") == 2
    (record,) = caplog.records
    assert "'fraud' arrive on partitions 0 and 2 of inference.events: key each message by its model" in record.getMessage()
    assert (routing.partition("model", "fraud"), routing.partition("model", "churn")) == (0, 1)  # the latest: where its state goes
    assert routing.partition("host", "fraud") is None


def test_hosts_are_told_to_key_by_host_and_a_model_may_share_a_host_name() -> None:
    metrics = Metrics(CollectorRegistry())
    routing = Routing(metrics)
    routing.see("gpu.metrics", 3, "host", "node-1")
    routing.see("inference.events", 0, "model", "node-1")  # another topic's partitions: not a move
    routing.see("gpu.metrics", 1, "host", "node-1")
    assert _misrouted(metrics, "gpu.metrics") == 1 and _misrouted(metrics, "inference.events") == 0
    assert (routing.partition("host", "node-1"), routing.partition("model", "node-1")) == (1, 0)
