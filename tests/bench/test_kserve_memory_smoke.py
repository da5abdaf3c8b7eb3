"""Smoke test: bench.kserve_memory on a few halves (no size assertions beyond what must hold)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import kserve_memory


def test_kserve_memory_reports_each_shape(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mem.json"
    assert kserve_memory.main(["--halves", "50", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert set(result["per_half"]) == set(kserve_memory.SHAPES)
    for shape in result["per_half"].values():
        assert shape["joiner_bytes"] > 0 and shape["table_record_bytes"] > shape["message_bytes"]
        assert shape["total_bytes"] == shape["message_bytes"] + shape["joiner_bytes"] + shape["table_record_bytes"]
    held = {"50", str(result["default_max_pending"])}
    assert set(result["save_per_batch"]) == held
    for cost in result["save_per_batch"].values():
        assert cost["save_unchanged_ms"] > 0 and cost["save_after_1000_requests_ms"] > 0 and cost["decode_1000_requests_ms"] > 0
        assert cost["save_vs_decode"] == pytest.approx(cost["save_after_1000_requests_ms"] / cost["decode_1000_requests_ms"], rel=0.05)


def test_halves_must_be_positive(capsys) -> None:
    with pytest.raises(SystemExit):
        kserve_memory.main(["--halves", "0"])
    assert "--halves must be at least 1" in capsys.readouterr().err
