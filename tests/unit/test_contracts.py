"""Settings, dead-letter records and the generated JSON Schemas."""

from __future__ import annotations

import dataclasses
import json

import pytest

from streams.deadletter import dead_letter, from_kafka, to_kafka
from streams.errors import Rejected
from streams.schemas import SCHEMA_DIR, build_schemas, stale_schemas
from streams.settings import Settings, SettingsError


def test_settings_read_only_inferwatch_variables() -> None:
    s = Settings.from_env({"INFERWATCH_KAFKA_BOOTSTRAP": "k:9092", "INFERWATCH_MAX_FEATURES": "10", "OTHER": "x"})
    assert (s.kafka_bootstrap, s.max_features, s.inference_topic) == ("k:9092", 10, "inference.events")


def test_settings_name_the_variable_that_does_not_parse() -> None:
    with pytest.raises(SettingsError, match="INFERWATCH_WEB_PORT"):
        Settings.from_env({"INFERWATCH_WEB_PORT": "eighty"})


@pytest.mark.parametrize(("raw", "value"), [("false", False), ("0", False), ("Off", False), ("TRUE", True), ("yes", True)])
def test_boolean_settings_parse_the_usual_spellings(raw: str, value: bool) -> None:
    assert Settings.from_env({"INFERWATCH_LATENCY_WHITEN": raw}).latency_whiten is value


def test_a_boolean_setting_that_does_not_parse_is_named() -> None:
    with pytest.raises(SettingsError, match="INFERWATCH_LATENCY_WHITEN='maybe' is not a valid bool"):
        Settings.from_env({"INFERWATCH_LATENCY_WHITEN": "maybe"})


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [("INFERWATCH_GPU_WARMUP_SAMPLES", "-1", "must be >= 0"), ("INFERWATCH_GPU_WARMUP_SAMPLES", "1e3", "not a valid int"),
     ("INFERWATCH_WARMUP_EVENTS", "-5", "must be >= 0"), ("INFERWATCH_FALSE_ALARMS_PER_MILLION", "0", r"must be in \(0, 1e6\)"),
     ("INFERWATCH_FALSE_ALARMS_PER_MILLION", "nan", r"must be in \(0, 1e6\)"), ("INFERWATCH_WEB_PORT", "70000", r"must be in \[1, 65535\]"),
     ("INFERWATCH_BATCH_SIZE", "0", "must be > 0"), ("INFERWATCH_SNAPSHOT_INTERVAL_SECONDS", "0", "must be > 0"),
     ("INFERWATCH_MAX_EVENT_AHEAD_SECONDS", "inf", "must be > 0"), ("INFERWATCH_RESOLVE_AFTER_SECONDS", "-30", "must be > 0"),
     ("INFERWATCH_FALSE_ALERTS_PER_MODEL_PER_DAY", "-1", "must be >= 0")],
)
def test_numeric_settings_out_of_range_are_named_at_start_up(variable: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}='{raw}' .*{message}"):
        Settings.from_env({variable: raw})


def test_numeric_settings_that_may_be_zero() -> None:
    s = Settings.from_env({"INFERWATCH_GPU_GRACE_SECONDS": "0", "INFERWATCH_WARMUP_EVENTS": "0", "INFERWATCH_METRICS_MAX_FEATURES": "0"})
    assert (s.gpu_grace_seconds, s.warmup_events, s.metrics_max_features) == (0.0, 0, 0)


def test_the_engine_builds_the_gpu_detector_with_the_settings_warmup() -> None:
    from streams.core import Engine

    assert Engine(Settings()).factory.gpu().warmup == 1000
    assert Engine(Settings.from_env({"INFERWATCH_GPU_WARMUP_SAMPLES": "0"})).factory.gpu().warmup == 0


def test_the_engine_builds_the_latency_detector_as_the_settings_say() -> None:
    from streams.core import Engine

    assert Engine(Settings()).factory.latency().whiten is True
    assert Engine(Settings(latency_whiten=False)).factory.latency().whiten is False
    assert Engine(Settings()).factory.latency().floor is True
    assert Engine(Settings.from_env({"INFERWATCH_LATENCY_FLOOR": "off"})).factory.latency().floor is False


def test_every_setting_is_documented() -> None:
    assert all(var.startswith("INFERWATCH_") and help_ for var, _, help_ in Settings.describe())


def test_dead_letter_keeps_original_bytes_and_headers() -> None:
    record = dead_letter(
        Rejected("not_json", "Input data was truncated"), topic="inference.events", partition=3, offset=42,
        key=b"fraud", value=b'{"ts": 1', headers=[("trace", b"t-1")], received_at=5.0,
    )
    key, value, headers = to_kafka(record)
    assert (key, value) == (b"fraud", b'{"ts": 1') and ("trace", b"t-1") in headers
    assert from_kafka(key, value, headers) == record


def test_a_header_without_a_value_stays_null_in_the_dead_letter() -> None:
    # aiokafka delivers a Kafka header without a value as None; it used to become b"None"
    # (and made the dead letter's own construction raise a TypeError when passed as it came).
    from streams.intake import message_headers

    consumed = message_headers([("trace", None), ("tenant", b"acme")])
    assert consumed == [("trace", None), ("tenant", b"acme")]
    record = dead_letter(Rejected("not_json", "x"), topic="t", partition=0, offset=1, key=None, value=b"{", headers=consumed)
    key, value, headers = to_kafka(record)
    assert ("trace", None) in headers and from_kafka(key, value, headers) == record


def test_reading_a_foreign_message_as_dead_letter_fails_clearly() -> None:
    with pytest.raises(ValueError, match="missing header"):
        from_kafka(None, b"x", [])
    with pytest.raises(ValueError, match="missing header"):  # a null inferwatch.* value counts as missing
        from_kafka(None, b"x", [("inferwatch.reason", None)])


def test_committed_json_schemas_are_current() -> None:
    assert stale_schemas() == [], "run `inferwatch schemas` and commit streams/schemas/"


def test_inference_schema_requires_the_contract_fields() -> None:
    schema = build_schemas()["inference_event.json"]
    assert set(schema["required"]) == {"ts", "model", "latency_ms"}
    assert schema["additionalProperties"] is True
    assert json.loads((SCHEMA_DIR / "inference_event.json").read_text()) == schema


def test_every_numeric_default_is_in_its_range() -> None:
    numeric = {f.metadata["env"]: str(f.default) for f in dataclasses.fields(Settings) if type(f.default) in (int, float)}
    assert len(numeric) > 15 and Settings.from_env(numeric) == Settings()
