"""Smoke test: the drift benchmark runs in quick mode and writes the documented JSON."""

from __future__ import annotations

import json

from bench import drift_suite
from bench._streams import SCENARIOS


def test_quick_run_writes_json(tmp_path):
    out = tmp_path / "drift.json"
    assert drift_suite.main(["--json", str(out), "--quick"]) == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"config", "scenarios", "no_change", "targets"}
    detectors = {r["detector"] for r in data["scenarios"]}
    assert detectors == {"inferwatch", "oracle_cusum", "river.ADWIN", "river.PageHinkley", "river.KSWIN"}
    assert {r["scenario"] for r in data["scenarios"]} == {s.name for s in SCENARIOS}
    for r in data["scenarios"]:
        assert {"median_delay", "p90_delay", "missed", "false_alarms_before_onset", "seeds"} <= set(r)
        assert r["missed"] + r["detected"] == r["seeds"]
    assert {r["stream"] for r in data["no_change"]} == {"numeric", "categorical", "rare_class", "missing"}
    for r in data["no_change"]:
        assert r["events"] > 0 and r["per_million"] >= 0 and r["run"] in {"long", "fleet", "pooled"}
    for name in ("target_1", "target_2"):
        assert isinstance(data["targets"][name]["met"], bool)
    mean_shifts = {s.name for s in SCENARIOS if s.kind == "mean"}
    assert set(data["targets"]["target_2"]["values"]) == mean_shifts  # abrupt and gradual
    assert any("gradual" in name for name in mean_shifts)
