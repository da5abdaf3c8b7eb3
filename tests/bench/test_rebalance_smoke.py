"""Smoke test: bench.rebalance with one join while events flow; every event counted exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import rebalance

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_join_under_traffic_loses_and_repeats_nothing(tmp_path: Path) -> None:
    js = tmp_path / "rebalance.json"
    result = rebalance.main(["--rate", "150", "--seconds", "12", "--plan", "3:start:b", "--json", str(js)])
    assert json.loads(js.read_text()) == result
    assert result["produced"] == 1800 and result["workers"] == ["a", "b"]
    assert (result["missing"], result["duplicates"]) == (0, 0)
    assert result["counted"] == result["produced"]


def test_a_bad_plan_is_refused() -> None:
    with pytest.raises(SystemExit, match="start or kill"):
        rebalance.main(["--plan", "3:pause:b"])
