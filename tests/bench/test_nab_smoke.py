"""Smoke test: bench.nab on a two-file copy of the NAB data (no timing assertions)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from bench import nab

SOURCE = nab.DEFAULT_DATA
FILES = ["realAdExchange/exchange-2_cpc_results.csv", "realTraffic/speed_7578.csv"]


@pytest.fixture
def tiny_nab(tmp_path: Path) -> Path:
    assert (SOURCE / "data").is_dir(), f"NAB data not found at {SOURCE}: shared/ must sit beside the repository"
    data = tmp_path / "nab"
    for key in FILES:
        (data / "data" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SOURCE / "data" / key, data / "data" / key)
    labels = json.loads((SOURCE / "labels" / "combined_windows.json").read_text())
    (data / "labels").mkdir()
    (data / "labels" / "combined_windows.json").write_text(json.dumps({k: labels[k] for k in FILES}))
    shutil.copy(SOURCE / "profiles.json", data / "profiles.json")
    return data


def test_nab_run_writes_scores_and_json(tiny_nab: Path, tmp_path: Path):
    out, js = tmp_path / "results", tmp_path / "nab.json"
    result = nab.main(["--data", str(tiny_nab), "--out", str(out), "--json", str(js)])
    assert json.loads(js.read_text()) == result
    assert result["files"] == 2
    for name in ("LatencyAnomaly", "HalfSpaceTrees+MinMaxScaler"):
        profiles = result["detectors"][name]["profiles"]
        assert set(profiles) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
        for profile, p in profiles.items():
            assert -100.0 <= p["score"] <= 100.0 and p["windows"] == 5
            assert p["windows_hit"] + len(p["missed_windows"]) == 5
            assert {w["file"] for w in p["missed_windows"]} <= set(FILES)
            fn = 2.0 if profile == "reward_low_FN_rate" else 1.0
            assert p["raw"] == pytest.approx(p["true_positive_weight"] - fn * len(p["missed_windows"]) + p["false_positive_cost"])
    own = result["detectors"]["LatencyAnomaly"]["at_own_threshold"]
    assert set(own) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    for p in own.values():
        assert p["threshold"] == 0.5 and p["windows_hit"] + len(p["missed_windows"]) == 5
    # NAB's chosen threshold is the best the sweep found: the detector's own one scores no higher.
    assert own["standard"]["score"] <= result["detectors"]["LatencyAnomaly"]["profiles"]["standard"]["score"] + 1e-9
    assert "at_own_threshold" not in result["detectors"]["HalfSpaceTrees+MinMaxScaler"]
    for key in FILES:
        with (out / key).open() as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["timestamp", "value", "anomaly_score"]
        src_rows = (SOURCE / "data" / key).read_text().splitlines()
        assert len(rows) == len(src_rows)
        assert all(0.0 <= float(r[2]) <= 1.0 for r in rows[1:])


def test_nab_run_without_labels_only_writes_scores(tiny_nab: Path, tmp_path: Path):
    shutil.rmtree(tiny_nab / "labels")
    result = nab.main(["--data", str(tiny_nab), "--out", str(tmp_path / "r"), "--no-baseline"])
    assert list(result["detectors"]) == ["LatencyAnomaly"]
    assert "profiles" not in result["detectors"]["LatencyAnomaly"]
    assert (tmp_path / "r" / FILES[0]).exists()
