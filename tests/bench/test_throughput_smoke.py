"""Smoke test: bench.throughput end to end on a few thousand events (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import throughput

pytestmark = pytest.mark.integration


def test_throughput_run_reports_rates_ratio_and_rss(tmp_path: Path):
    js = tmp_path / "throughput.json"
    # small batches: the worker must take several, so its rate spans more than one /metrics poll
    result = throughput.main(["--events", "3000", "--batch-size", "200", "--json", str(js), "--poll", "0.1", "--timeout", "120"])
    assert json.loads(js.read_text()) == result
    assert result["benchmark"] == "throughput_kafka_path"
    assert result["events"] == 3000 and result["features"] == 64 and result["partitions"] == 1
    assert result["machine"]["cpu_count"] >= 1
    assert 1000 < result["message_bytes_mean"] < 4000
    assert result["raw_aiokafka_decode"]["decoded_records"] == 3000
    assert result["raw_aiokafka_parse"]["parsed_fields"] > 3000  # orjson dicts: several top-level fields per event
    assert result["raw_aiokafka_engine"]["decoded_records"] == 3000  # every event through the detection core
    for phase in ("raw_aiokafka", "raw_aiokafka_parse", "raw_aiokafka_decode", "raw_aiokafka_engine", "worker"):
        assert result[phase]["events"] == 3000
        assert result[phase]["events_per_second"] > 0
    worker = result["worker"]
    assert worker["workers"] == 1 and worker["per_worker_events"] == [3000]
    assert worker["startup_seconds"] > 0
    assert len(worker["rss_mib"]) == 1 and worker["rss_mib"][0] > 10
    half = worker.get("second_half")  # absent only when one /metrics poll saw both the half and the end
    if half is not None:
        assert 0 < half["events"] <= 1500 and half["events_per_second"] > 0 and half["cpu_us_per_event"] > 0
    assert result["ratio_worker_vs_raw"] == pytest.approx(
        worker["events_per_second"] / result["raw_aiokafka"]["events_per_second"], abs=1e-3
    )
    for phase, ratio in (("raw_aiokafka_parse", "ceiling_ratio_parse_only_vs_raw"), ("raw_aiokafka_engine", "ceiling_ratio_engine_vs_raw")):
        assert result[ratio] == pytest.approx(result[phase]["events_per_second"] / result["raw_aiokafka"]["events_per_second"], abs=1e-3)
    assert result["target_ratio_worker_vs_raw"] == 0.5
    assert {"batch_size", "batch_seconds", "warmup_events", "faust_overrides"} <= set(result["settings"])
