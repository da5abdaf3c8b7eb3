"""Smoke test: the false-alarm audit runs in quick mode and writes the documented JSON."""

from __future__ import annotations

import json

import pytest

from bench import false_alarms


def test_quick_run_writes_json(tmp_path):
    out = tmp_path / "fa.json"
    assert false_alarms.main(["--json", str(out), "--quick"]) == 0
    data = json.loads(out.read_text())
    assert data["config"] == {"events": 20_000, "seeds": 1, "budget_per_million": 100.0, "allowance": 3.0, "latency_warmup": 0,
                              "gpu_warmup": 0}
    assert [r["stream"] for r in data["streams"]] == [s.name for s in false_alarms.STREAMS]
    detectors = {r["detector"] for r in data["streams"]}
    assert detectors == {"LatencyAnomaly", "GpuAnomaly", "NumericDrift", "MultivariateDrift", "MissingRate",
                         "CategoricalDrift", "PredictionDrift", "ConfidenceDrift"}
    for r in data["streams"]:
        assert r["expected_per_seed"] == pytest.approx(2.0 * r["budget_units"])
        assert len(r["alarms"]) == 1 and r["alarms"][0] >= 0
        assert r["within_allowance"] == (r["alarms"][0] <= 3.0 * r["expected_per_seed"])
        assert r["per_million"] == pytest.approx(r["alarms"][0] / (20_000 * r["budget_units"]) * 1e6, abs=0.05)
    units = {r["stream"]: r["budget_units"] for r in data["streams"]}
    assert units["numeric_relu"] == 4 and units["confidence_softmax_10"] == 2 and units["gpu_busy"] == 1
    summary = data["summary"]
    assert summary["streams"] == len(data["streams"])
    assert summary["within_allowance"] + len(summary["over_allowance"]) == summary["streams"]


def test_only_selects_streams_and_rejects_unknown(capsys):
    assert false_alarms.main(["--only", "gpu_busy", "--events", "10000"]) == 0
    assert [r["stream"] for r in json.loads(capsys.readouterr().out)["streams"]] == ["gpu_busy"]
    with pytest.raises(SystemExit):
        false_alarms.main(["--only", "no_such_stream"])
    with pytest.raises(SystemExit):
        false_alarms.main(["--events", "50"])


@pytest.mark.parametrize(
    ("stream", "option", "key", "warmup"),
    [
        ("latency_timeouts", "--latency-warmup", "latency_warmup", 9999),  # the first timeouts at 30 s are new to a filling reference
        ("gpu_daily_load", "--gpu-warmup", "gpu_warmup", 1000),  # a GPU's first daily rise (samples 500-1,000) is new to filling ones
    ],
)
def test_a_warmup_holds_back_the_first_events_alarms(capsys, stream, option, key, warmup):
    args = ["--only", stream, "--events", "10000", "--budget", "1"]
    runs = {}
    for w in (0, warmup):
        assert false_alarms.main([*args, option, str(w)]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["config"][key] == w
        runs[w] = data["streams"][0]["alarms"]
    assert sum(runs[0]) > 0 and runs[warmup] == [0, 0]
    for bad in ("10000", "-1"):  # each warm-up in [0, --events)
        with pytest.raises(SystemExit):
            false_alarms.main(["--events", "10000", option, bad])
