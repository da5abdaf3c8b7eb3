"""A model's events produced to two partitions (not keyed by the model) are processed, counted as
misrouted and logged once with the fix, through a real worker."""

from __future__ import annotations

import re
import time

import pytest

from streams.metrics import events_per_model
from streams.scenario import builtin
from streams.worker import spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import metrics_text, produce, run_settings, worker_log

pytestmark = pytest.mark.integration


def test_events_of_one_model_on_two_partitions_are_counted_as_misrouted(kafka_bootstrap: str, tmp_path) -> None:
    settings = run_settings(kafka_bootstrap)
    native = [m for m in builtin(rate=1.0).messages() if m.topic == "inference"]
    model = native[0].key.decode()
    mine = [m for m in native if m.key == native[0].key][:3]
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, log, partitions=2)
    try:
        wait_healthy(settings.web_port, worker, log)
        for m, partition in zip(mine, (0, 1, 1)):  # keyed by request id, say: the model's events go to both
            produce(settings, settings.inference_topic, b"req-" + str(partition).encode(), [(m.value, m.headers)], partition=partition)
        deadline = time.monotonic() + 60
        text = metrics_text(settings.web_port)
        while events_per_model(text).get(model, 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            text = metrics_text(settings.web_port)
    except Exception:
        print(worker_log(log))
        raise
    finally:
        stop_worker(worker)
    assert events_per_model(text)[model] == 3  # still processed
    topic = re.escape(settings.inference_topic)
    assert re.search(rf'^inferwatch_misrouted_records_total\{{topic="{topic}"\}} 1\.0$', text, re.M), "one move: 0 -> 1"
    warnings = [line for line in log.read_text(errors="replace").splitlines() if "arrive on partitions 0 and 1" in line]
    assert len(warnings) == 1 and f"{model!r}" in warnings[0] and "key each message by its model" in warnings[0], warnings
