"""CLI tools against the real broker: replay, backtest, gpu-bridge, reference commands, baselines."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from click.testing import CliRunner

from streams.cli import main
from streams.deadletter import from_kafka
from streams.decoding import GpuDecoder
from streams.gpu_bridge import bridge
from streams.gpu_collect import collect, kafka_sink
from streams.scenario import MODELS, InputDrift, Scenario, baseline, builtin, write_files
from streams.settings import Settings
from streams.worker import spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import metrics_text, read_alerts, replay_messages, run_settings, split, worker_log, wait_for
from tests.unit.test_tools import DCGM_TEXT, FakeNvmlV2

pytestmark = pytest.mark.integration


async def _drain(bootstrap: str, topic: str, count: int, timeout: float = 60.0, until: object = None) -> list:
    """Messages of ``topic`` from the start: ``count`` of them, or until ``until(messages)`` holds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list = []
    done = until or (lambda messages: len(messages) >= count)
    try:
        async with asyncio.timeout(timeout):
            while not done(got):
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    got.extend(records)
    finally:
        await consumer.stop()
    return got


def _env(settings: Settings) -> dict[str, str]:
    return {"INFERWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "INFERWATCH_INFERENCE_TOPIC": settings.inference_topic,
            "INFERWATCH_GPU_TOPIC": settings.gpu_topic, "INFERWATCH_CONTROL_TOPIC": settings.control_topic}


def test_replay_cli_sends_every_line_to_its_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = run_settings(kafka_bootstrap)
    files = write_files(Scenario(seconds=20, rate=5.0), tmp_path)
    result = CliRunner().invoke(main, ["replay", str(files[0]), str(files[1]), "--speed", "0"], env=_env(settings))
    assert result.exit_code == 0, result.output
    sent = re.search(r"sent (\d+) to (\S+), (\d+) to (\S+)", result.output)
    assert sent is not None, result.output
    inference = sum(1 for _ in gzip.open(files[0]))
    gpu = sum(1 for _ in gzip.open(files[1]))
    assert {sent[2]: int(sent[1]), sent[4]: int(sent[3])} == {settings.inference_topic: inference, settings.gpu_topic: gpu}
    assert len(asyncio.run(_drain(kafka_bootstrap, settings.gpu_topic, gpu))) == gpu


def test_backtest_cli_writes_alerts_and_a_plot(tmp_path: Path) -> None:
    inference, gpu, _ = write_files(builtin(rate=20.0), tmp_path / "scenario")
    out = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(main, ["backtest", "--inference", str(inference), "--gpu", str(gpu), "--out", str(out)],
                                env={"INFERWATCH_WARMUP_EVENTS": "1000", "INFERWATCH_RESOLVE_AFTER_SECONDS": "30"})
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((a["status"], a["kind"]) for a in alerts) == [
        ("firing", "correlated"), ("firing", "input_drift"), ("resolved", "correlated"), ("resolved", "input_drift")
    ]
    assert "bad lines" in result.output and "not_json" in result.output
    assert out.with_suffix(".svg").read_text().count("<polyline") == 2


def test_backtest_cli_needs_an_input() -> None:
    result = CliRunner().invoke(main, ["backtest", "--out", "x.jsonl"])
    assert result.exit_code == 2 and "--inference" in result.output


@pytest.fixture
def dcgm_exporter() -> Iterator[str]:
    """A local HTTP server answering like dcgm-exporter's /metrics (404 elsewhere)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = DCGM_TEXT.encode() if self.path == "/metrics" else b"no"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_gpu_bridge_produces_decodable_samples(kafka_bootstrap: str, dcgm_exporter: str) -> None:
    settings = run_settings(kafka_bootstrap)
    sent = asyncio.run(bridge(f"{dcgm_exporter}/metrics", settings, interval=0.1, rounds=2))
    assert sent == 4  # two GPUs, two scrapes
    messages = asyncio.run(_drain(kafka_bootstrap, settings.gpu_topic, sent))
    samples = [s for m in messages for s in GpuDecoder(settings).decode(m.value)]
    assert {(s.host, s.gpu) for s in samples} == {("node-1", 0), ("node-1", 1)}
    assert {m.key for m in messages} == {b"node-1"}


def test_gpu_bridge_survives_a_failing_exporter(kafka_bootstrap: str, dcgm_exporter: str) -> None:
    settings = run_settings(kafka_bootstrap)
    assert asyncio.run(bridge(f"{dcgm_exporter}/wrong", settings, interval=0.05, rounds=2)) == 0



def test_gpu_collect_produces_decodable_samples_keyed_by_host(kafka_bootstrap: str) -> None:
    settings = run_settings(kafka_bootstrap)

    async def go() -> int:
        async with kafka_sink(settings) as send:
            return await collect(FakeNvmlV2(), send, interval=0.05, host="node-7", rounds=3)

    sent = asyncio.run(go())
    assert sent == 6  # two GPUs, three rounds
    messages = asyncio.run(_drain(kafka_bootstrap, settings.gpu_topic, sent))
    samples = [s for m in messages for s in GpuDecoder(settings).decode(m.value)]
    assert sorted((s.host, s.gpu) for s in samples) == [("node-7", 0)] * 3 + [("node-7", 1)] * 3
    assert {m.key for m in messages} == {b"node-7"}
    assert all(s.fields["DCGM_FI_DEV_FB_USED"] == 30 * 1024 for s in samples)


def test_reference_commands_reach_the_worker_and_bad_ones_are_dead_lettered(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = run_settings(kafka_bootstrap)
    scenario = builtin(rate=20.0)
    warmup, rest = split(scenario, 60)
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, log)
    try:
        wait_healthy(settings.web_port, worker, log)
        replay_messages(warmup, settings, speed=0)
        result = CliRunner().invoke(main, ["reference", "relearn", "fraud-detector"], env=_env(settings))
        assert result.exit_code == 0 and "sent relearn for fraud-detector" in result.output, result.output

        async def bad_command() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            await producer.send_and_wait(settings.control_topic, b'{"action": "drop-table", "model": "x"}')
            await producer.stop()

        asyncio.run(bad_command())
        replay_messages(rest[:400], settings, speed=0)  # the command applies on the model's next batch
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and 'inferwatch_reference_commands_total{action="relearn"} 1.0' not in text:
            time.sleep(0.5)
            text = metrics_text(settings.web_port)
        assert 'inferwatch_reference_commands_total{action="relearn"} 1.0' in text, worker_log(log)
        assert "reference relearn applied to fraud-detector" in log.read_text()
        has_bad_command = lambda ms: any(dict(m.headers).get("inferwatch.reason") == b"bad_command" for m in ms)  # noqa: E731
        letters = [from_kafka(m.key, m.value, list(m.headers)) for m in asyncio.run(_drain(kafka_bootstrap, settings.deadletter_topic, 0, until=has_bad_command))]
        (bad,) = [letter for letter in letters if letter.reason == "bad_command"]
        assert bad.topic == settings.control_topic and b"drop-table" in bad.value
    finally:
        stop_worker(worker)


def test_a_worker_takes_a_versions_reference_from_its_baseline_file_and_reloads_it_on_command(kafka_bootstrap: str, tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    folder.mkdir()
    healthy = [m.value for m in baseline(seconds=70, rate=20.0) if m.topic == "inference"]  # 1,400 events a model, and bad lines
    (folder / "healthy.jsonl.gz").write_bytes(gzip.compress(b"".join(line + b"\n" for line in healthy)))
    settings = run_settings(kafka_bootstrap, baseline_dir=str(folder))  # a warm-up of 1,000 events
    # 30 s = 600 events a model, x1 of fraud-detector moved by 1 sd from the first: fewer than a warm-up
    live = list(Scenario(seconds=30, rate=20.0, start=1_700_100_000.0, incidents=(InputDrift(MODELS[0], "x1", 0, 30, 1.0),)).messages())
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, log)
    try:
        wait_healthy(settings.web_port, worker, log)
        replay_messages(live[: len(live) // 2], settings, speed=0)
        drift = lambda alerts: any(a.kind == "input_drift" and a.feature == "x1" and a.status == "firing" for a in alerts)  # noqa: E731
        alerts = read_alerts(settings, drift, timeout=90, settle=0)
        assert drift(alerts), worker_log(log)
        assert {a.model for a in alerts if a.kind == "input_drift"} == {MODELS[0]}
        assert f"{MODELS[0]} v1: reference loaded from its baseline of 1400 events" in log.read_text()

        result = CliRunner().invoke(main, ["reference", "baseline", MODELS[0], "v1"], env=_env(settings))
        assert result.exit_code == 0 and "sent baseline for fraud-detector v1" in result.output, result.output
        replay_messages(live[len(live) // 2 :], settings, speed=0)  # the command applies on the model's next batch
        wait_for("the baseline command", lambda: "reference baseline applied to fraud-detector versions v1" in log.read_text())
        assert log.read_text().count(f"{MODELS[0]} v1: reference loaded from its baseline") == 2
        assert 'inferwatch_reference_commands_total{action="baseline"} 1.0' in metrics_text(settings.web_port)
    finally:
        stop_worker(worker)
