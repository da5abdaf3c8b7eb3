"""Smoke test: bench.detector_cost --quick writes its JSON with timings and snapshot sizes (no timing assertions)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench import detector_cost


def test_detector_cost_quick_writes_timings_and_snapshot_sizes(tmp_path: Path):
    js = tmp_path / "cost.json"
    assert detector_cost.main(["--quick", "--json", str(js)]) == 0
    out = json.loads(js.read_text())
    assert "LatencyAnomaly" in out["ours_set"]
    for key in ("ours_per_event_us", "ours_update_many_100_us", "ours_update_many_1000_us", "river_adwin_ph_us", "river_kswin_us"):
        assert math.isfinite(out["us_per_event"][key]) and out["us_per_event"][key] > 0
    parts = out["us_per_event_by_detector"]
    assert set(parts) == {"NumericDrift", "MissingRate", "MultivariateDrift", "ConfidenceDrift", "PredictionDrift", "LatencyAnomaly"}
    for part in parts.values():
        assert 0 < part["snapshot_bytes_zlib"] <= part["snapshot_bytes"] * 1.01
    assert out["snapshot_bytes_set"]["snapshot_bytes"] == sum(p["snapshot_bytes"] for p in parts.values())
