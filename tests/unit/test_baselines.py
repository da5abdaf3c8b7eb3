"""Baseline files: read as the inference topic is, bad lines skipped and counted; a version's drift
detectors take their reference from its baseline and monitor from its first live event."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import random
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from streams.backtest import run
from streams.baselines import Baselines, read_baseline
from streams.cli import main
from streams.control import make_command, parse_command
from streams.core import Engine
from streams.core.detectors import DetectorFactory
from streams.core.model_monitor import VersionMonitor
from streams.decoding import encode_inference_event
from streams.records import InferenceEvent
from streams.scenario import _event
from streams.settings import Settings

MODEL = "fraud-detector"
BAD_LINES = (
    b'{"ts": 1, "model": "fraud-detector", "latency_ms": -4}',  # out_of_range
    b'{"model": "fraud-detector", "latency_ms": 3}',  # missing_field
    b"fraud-detector, but not JSON",  # not_json
    b'{"ts": 1, "model": "fraud-detector", "latency_ms": NaN}',  # non_finite
    b'{"ts": 1, "model": "fraud-detector", "latency_ms": "3"}',  # wrong_type
)


def events(n: int, *, start: float = 1.7e9, seed: int = 0, shift: float = 0.0, version: str = "v1") -> list[InferenceEvent]:
    """``n`` of the scenario's events of ``MODEL`` at 20 a second, feature ``x1`` moved by ``shift`` sd."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        event = _event(rng, MODEL, start + i / 20, i)
        event.features["x1"] = float(event.features["x1"]) + shift  # type: ignore[arg-type]
        out.append(msgspec.structs.replace(event, model_version=version) if version != "v1" else event)
    return out


def write(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def lines_of(batch: list[InferenceEvent]) -> list[bytes]:
    return [encode_inference_event(e) for e in batch]


# -- reading ----------------------------------------------------------------------------------------
def test_every_file_under_the_folder_is_read_and_events_grouped_by_version(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl.gz", lines_of(events(300)))
    write(tmp_path / "deeper" / "b.jsonl", lines_of(events(200, version="v2")) + [b"", b"   "])
    write(tmp_path / "notes.txt", lines_of(events(50, version="v9")))  # not a baseline file name
    read = read_baseline(tmp_path, Settings())
    assert read.files == 2 and not read.rejected
    assert {key: len(batch) for key, batch in read.events.items()} == {(MODEL, "v1"): 300, (MODEL, "v2"): 200}
    assert read.events[(MODEL, "v1")] == events(300)  # in file order, the values as sent


def test_bad_lines_and_unreadable_files_are_counted_by_reason_with_file_and_line(tmp_path: Path) -> None:
    good = lines_of(events(100))
    write(tmp_path / "mixed.jsonl", good[:50] + list(BAD_LINES) + good[50:])
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    read = read_baseline(tmp_path, Settings())
    assert len(read.events[(MODEL, "v1")]) == 100
    assert read.rejected == {"out_of_range": 1, "missing_field": 1, "not_json": 1, "non_finite": 1, "wrong_type": 1, "unreadable_file": 1}
    assert read.problems[0].startswith(f"{tmp_path / 'broken.jsonl.gz'}: cannot be read")
    assert read.problems[1].startswith(f"{tmp_path / 'mixed.jsonl'}:51: out_of_range")
    assert [p.split(": ")[1] for p in read.problems[1:]] == ["out_of_range", "missing_field", "not_json", "non_finite", "wrong_type"]


def test_a_truncated_gzip_keeps_what_was_read_before_the_damage(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(line + b"\n" for line in lines_of(events(2000))))
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    read = read_baseline(tmp_path, Settings())
    assert read.rejected == {"unreadable_file": 1}
    assert 0 < len(read.events[(MODEL, "v1")]) < 2000


def test_one_version_is_read_alone_and_capped_at_its_first_events(tmp_path: Path) -> None:
    write(tmp_path / "b.jsonl", lines_of(events(300)) + lines_of(events(300, version="v2")) + [b"not json and not the model"])
    read = read_baseline(tmp_path, Settings(), model=MODEL, version="v2", max_events=120)
    assert list(read.events) == [(MODEL, "v2")] and read.capped == {(MODEL, "v2")}
    assert read.events[(MODEL, "v2")] == events(300, version="v2")[:120]
    assert not read.rejected  # the line not naming the model is not even parsed


def test_a_model_whose_name_json_escapes_is_still_found(tmp_path: Path) -> None:
    event = msgspec.structs.replace(events(1)[0], model="modèle \"β\"")
    line = json.dumps(msgspec.to_builtins(event)).encode()  # Python's json writes \u00e8 and \"
    assert b"\\u00e8" in line
    write(tmp_path / "b.jsonl", [line])
    assert len(read_baseline(tmp_path, Settings(), model=event.model, version="v1").events[(event.model, "v1")]) == 1


def test_baselines_without_a_folder_or_for_an_unknown_version_are_none(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "b.jsonl", lines_of(events(100)))
    assert Baselines("", Settings()).get(MODEL, "v1") is None
    assert Baselines(tmp_path, Settings()).get(MODEL, "v7") is None
    assert len(Baselines(tmp_path, Settings()).get(MODEL, "v1") or []) == 100
    with caplog.at_level(logging.WARNING, logger="streams.baselines"):
        assert Baselines(tmp_path / "gone", Settings()).get(MODEL, "v1") is None
    assert "does not exist" in caplog.text
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_baseline(tmp_path / "gone", Settings())


# -- the monitor --------------------------------------------------------------------------------------
def monitor(warmup: int = 2000) -> VersionMonitor:
    return VersionMonitor(MODEL, "v1", DetectorFactory(false_alarms_per_million=1.0, warmup=warmup))


def test_a_baseline_gives_every_drift_detector_its_reference_and_a_shift_is_caught_at_once() -> None:
    m = monitor()
    learned = m.learn_baseline(events(3000))
    assert learned == ["numeric_drift", "multivariate_drift", "missing_rate", "categorical_drift[country]", "confidence_drift", "prediction_drift"]
    assert {d.phase for d in m.detectors()} == {"monitoring"}
    assert m.numeric_names == ("x0", "x1", "x2", "x3", "x4", "x5", "amount") and m.categorical_names == ("country",)
    signals = m.process(events(400, start=1.8e9, seed=1, shift=1.0))
    assert signals and {s.feature for s in signals} <= {"x1", "_all_features"}
    assert min(s.ts for s in signals) < 1.8e9 + 200 / 20  # within the first 200 events: the warm-up would take 2000


def test_with_no_change_a_baseline_reference_raises_nothing() -> None:
    m = monitor()
    m.learn_baseline(events(3000))
    assert m.process(events(20_000, start=1.8e9, seed=2)) == []


def test_a_baseline_without_confidence_leaves_that_detector_learning_from_live_events() -> None:
    bare = [msgspec.structs.replace(e, confidence=None, probabilities=None, prediction=None) for e in events(2500)]
    m = monitor()
    assert "confidence_drift" not in m.learn_baseline(bare) and m.confidence.phase == "learning"
    assert m.prediction.phase == "learning" and m.numeric.phase == "monitoring"


def test_events_waiting_for_the_schema_are_monitored_with_the_next_batch() -> None:
    m = monitor()
    assert m.process(events(40, start=1.8e9, shift=3.0)) == []  # under the 100 the schema waits for
    m.learn_baseline(events(3000))
    signals = m.process(events(1, start=1.8e9 + 10, shift=3.0))
    assert any(s.feature == "x1" and s.ts < 1.8e9 + 2 for s in signals)  # the waiting events' shift


# -- the engine and the reference command ----------------------------------------------------------------
def test_a_version_first_seen_takes_its_baseline_and_alerts_within_what_would_be_its_warm_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "fraud.jsonl", lines_of(events(2500)))
    live = events(600, start=1.8e9, seed=3, shift=1.0)
    settings = Settings(warmup_events=1000)
    with caplog.at_level(logging.INFO, logger="streams.core"):
        alerts = Engine(settings, baselines=Baselines(tmp_path, settings)).on_events(live).alerts
    assert [(a.kind, a.feature) for a in alerts if a.status == "firing"][:1] == [("input_drift", "x1")]
    assert "fraud-detector v1: reference loaded from its baseline of 2500 events" in caplog.text
    assert Engine(settings).on_events(live).alerts == []  # the same events, learned as a warm-up


def test_a_baseline_shorter_than_a_warm_up_is_refused_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "fraud.jsonl", lines_of(events(500)))
    settings = Settings(warmup_events=1000)
    engine = Engine(settings, baselines=Baselines(tmp_path, settings))
    with caplog.at_level(logging.INFO, logger="streams.core"):
        engine.on_events(events(200, start=1.8e9))
    assert "its baseline holds 500 events, fewer than a warm-up's 1000" in caplog.text
    assert engine.models[MODEL].versions["v1"].numeric.phase == "learning"


def test_the_baseline_command_reads_the_files_again_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(warmup_events=1000)
    engine = Engine(settings, baselines=Baselines(tmp_path, settings))
    engine.on_events(events(300, start=1.8e9))  # no baseline yet: learning
    version = engine.models[MODEL].versions["v1"]
    assert version.numeric.phase == "learning"
    write(tmp_path / "fraud.jsonl", lines_of(events(1500)))
    command = parse_command(json.dumps(make_command("baseline", MODEL)).encode())
    assert engine.command(command["id"], "baseline", MODEL, None) == "reference baseline applied to fraud-detector versions v1"
    assert {d.phase for d in version.detectors()} == {"monitoring"}
    assert engine.command(command["id"], "baseline", MODEL, None) is None  # applied once
    with caplog.at_level(logging.WARNING, logger="streams.core"):
        engine.command("other", "baseline", MODEL, "v2")
    assert "fraud-detector v2: no baseline loaded (version not seen yet)" in caplog.text


def test_backtest_takes_baselines_from_the_setting(tmp_path: Path) -> None:
    write(tmp_path / "base" / "fraud.jsonl", lines_of(events(2500)))
    live = [("inference", line) for line in lines_of(events(600, start=1.8e9, seed=3, shift=1.0))]
    settings = Settings(warmup_events=1000, baseline_dir=str(tmp_path / "base"))
    assert any(a.kind == "input_drift" for a in run(live, settings).alerts)
    assert run(live, dataclasses.replace(settings, baseline_dir="")).alerts == []


# -- settings and the CLI ---------------------------------------------------------------------------------
def test_the_setting_is_read_and_a_worker_refuses_a_folder_that_is_not_one(tmp_path: Path) -> None:
    assert Settings.from_env({"INFERWATCH_BASELINE_DIR": str(tmp_path)}).baseline_dir == str(tmp_path)
    result = CliRunner().invoke(main, ["worker"], env={"INFERWATCH_BASELINE_DIR": str(tmp_path / "gone")})
    assert result.exit_code == 2 and "INFERWATCH_BASELINE_DIR" in result.output and "is not a folder" in result.output


def test_baselines_cli_reports_versions_use_and_bad_lines(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", lines_of(events(2100)) + lines_of(events(300, version="v2")))
    ok = CliRunner().invoke(main, ["baselines", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "fraud-detector           v1               2100        20        7            1  yes" in ok.output
    assert "v2                300        20        7            1  no: under INFERWATCH_WARMUP_EVENTS=2000" in ok.output
    write(tmp_path / "b.jsonl", list(BAD_LINES))
    bad = CliRunner().invoke(main, ["baselines", str(tmp_path)])
    assert bad.exit_code == 1 and "skipped 5 bad lines or files" in bad.output and "b.jsonl:3: not_json" in bad.output
    assert CliRunner().invoke(main, ["baselines", str(tmp_path / "gone")]).exit_code == 2
    assert CliRunner().invoke(main, ["baselines"], env={"INFERWATCH_BASELINE_DIR": ""}).exit_code == 2


def test_reference_cli_offers_the_baseline_action() -> None:
    result = CliRunner().invoke(main, ["reference", "--help"])
    assert "reset|relearn|baseline" in result.output


def test_a_monitor_snapshot_from_before_baselines_restores_its_schema_state() -> None:
    import pickle

    fixed, waiting = monitor(), monitor()
    fixed.process(events(150))
    waiting.process(events(40))
    restored = []
    for m, expected in ((fixed, True), (waiting, False)):
        del m.__dict__["_schema_fixed"]  # as pickled before baselines
        restored.append(pickle.loads(pickle.dumps(m)))
        assert restored[-1]._schema_fixed is expected
    still_waiting = restored[1]
    assert still_waiting.process(events(59)) == [] and still_waiting._pending is not None  # 99 of 100: still waiting
    still_waiting.process(events(1))
    assert still_waiting._pending is None and still_waiting._schema_fixed


def test_reading_one_version_stops_once_it_has_enough(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", lines_of(events(300, version="v2")) + [BAD_LINES[0]])
    read = read_baseline(tmp_path, Settings(), model=MODEL, version="v2", max_events=120)
    assert len(read.events[(MODEL, "v2")]) == 120 and not read.rejected  # the bad line after them was never read
    assert read_baseline(tmp_path, Settings(), max_events=120).rejected == {"out_of_range": 1}  # a whole read goes on


def test_a_failure_inside_baseline_loading_costs_the_live_batch_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    import streams.baselines

    write(tmp_path / "fraud.jsonl", lines_of(events(1500)))
    settings = Settings(warmup_events=1000)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    with monkeypatch.context() as patch:
        patch.setattr(streams.baselines, "read_baseline", broken)
        assert Baselines(tmp_path, settings).get(MODEL, "v1") is None
    with monkeypatch.context() as patch:
        patch.setattr(VersionMonitor, "learn_baseline", broken)
        with caplog.at_level(logging.INFO, logger="streams.core"):
            out = Engine(settings, baselines=Baselines(tmp_path, settings)).on_events(events(200, start=1.8e9))
        assert out.models == {MODEL} and "learning from its baseline failed" in caplog.text
        assert "version v1 first seen; learning its reference from its first 1000 events" in caplog.text
