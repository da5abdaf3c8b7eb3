"""A model's events produced to two partitions (not keyed by the model) are processed, counted as
misrouted and logged once with the fix, through a real worker."""

from __future__ import annotations

import re

import pytest

from streams.metrics import events_per_model
from streams.scenario import builtin
from tests.integration.service_helpers import metrics_text, produce, run_settings, running_worker, wait_for

pytestmark = pytest.mark.integration


def test_events_of_one_model_on_two_partitions_are_counted_as_misrouted(kafka_bootstrap: str, tmp_path) -> None:
    settings = run_settings(kafka_bootstrap)
    native = [m for m in builtin(rate=1.0).messages() if m.topic == "inference"]
    model = native[0].key.decode()
    mine = [m for m in native if m.key == native[0].key][:3]
    log = tmp_path / "worker.log"
    with running_worker(settings, log, partitions=2):
        for m, partition in zip(mine, (0, 1, 1)):  # keyed by request id, say: the model's events go to both
            produce(settings, settings.inference_topic, b"req-" + str(partition).encode(), [(m.value, m.headers)], partition=partition)
        wait_for("the model's 3 events", lambda: events_per_model(metrics_text(settings.web_port))[model] == 3)
        text = metrics_text(settings.web_port)
    assert events_per_model(text)[model] == 3  # still processed
    topic = re.escape(settings.inference_topic)
    assert re.search(rf'^inferwatch_misrouted_records_total\{{topic="{topic}"\}} 1\.0$', text, re.M), "one move: 0 -> 1"
    warnings = [line for line in log.read_text(errors="replace").splitlines() if "arrive on partitions 0 and 1" in line]
    assert len(warnings) == 1 and f"{model!r}" in warnings[0] and "key each message by its model" in warnings[0], warnings
