"""Smoke test: bench.model_budget on a short stream writes its JSON (no bound on the counts it reports)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import model_budget


def test_model_budget_reports_each_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "budget.json"
    result = model_budget.main(["--days", "0.02", "--rate", "2", "--seeds", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == result == json.loads(capsys.readouterr().out)
    assert result["events_per_seed"] == int(0.02 * 86_400 * 2) and result["days"] == 0.02
    assert set(result["settings"]) == {"1_per_day", "10_per_day", "1_per_million_per_detector"}
    for name, entry in result["settings"].items():
        assert entry["alerts"] == sum(entry["by_kind"].values())
        assert entry["alerts_per_day"] == pytest.approx(entry["alerts"] / 0.02, abs=1e-3)
        assert entry["alerts_per_day_upper95"] > entry["alerts_per_day"]
    assert result["settings"]["10_per_day"]["budget_per_day"] == 10.0
    canary = result["canary"]
    assert canary["rate_per_second"] == 0.2 and canary["events"] == int(2 * 3600 * 0.2)
    assert canary["days"] == pytest.approx(0.02 + canary["events"] * (5.0 - 0.5) / 86_400, abs=1e-3)
    for name in ("1_per_day_following_the_rate", "1_per_day_at_the_first_events_rate"):
        assert canary[name]["alerts"] == sum(canary[name]["by_kind"].values()) and canary[name]["budget_per_day"] == 1.0


def test_the_event_stream_has_no_change_in_its_shares() -> None:
    import numpy as np

    events = model_budget.events(20_000, 2.0, np.random.default_rng(0))
    first, second = events[:10_000], events[10_000:]
    nulls = [sum(e.features["country"] is None for e in half) / len(half) for half in (first, second)]
    assert all(0.005 < share < 0.015 for share in nulls)
    assert all(b.ts > a.ts for a, b in zip(events, events[1:]))
    ramp = model_budget.events(20_000, 2.0, np.random.default_rng(0), canary=(2_000, 0.2))
    canary_rate = 1999 / (ramp[1999].ts - ramp[0].ts)
    full_rate = 17_999 / (ramp[-1].ts - ramp[2000].ts)
    assert 0.18 < canary_rate < 0.22 and 1.9 < full_rate < 2.1


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        model_budget.main(["--days", "0"])
    assert "--days and --rate must be > 0" in capsys.readouterr().err
