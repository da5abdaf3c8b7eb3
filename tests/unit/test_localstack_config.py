"""Local-stack config rendering, port finder and process bookkeeping (no services)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from streams.localstack import (
    ManagedProcess,
    StackError,
    Status,
    WebhookRecorder,
    free_port,
    port_open,
    render_alertmanager_config,
    render_prometheus_config,
    render_server_properties,
)
from streams.localstack.process import seconds


def _props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _props(render_server_properties(tmp_path, 1234, 5678, {"num.partitions": "3"}))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:5678"
    assert props["advertised.listeners"].startswith("PLAINTEXT://127.0.0.1:1234")
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:5678"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "true"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "3"  # extra config wins (last key)


def test_durations() -> None:
    assert seconds(2) == "2000ms"
    assert seconds(0.25) == "250ms"
    assert seconds(0) == "1ms"


def test_prometheus_config(tmp_path: Path) -> None:
    text = render_prometheus_config(["127.0.0.1:6066", "127.0.0.1:7000"], scrape_interval=1.5)
    assert "job_name: inferwatch" in text
    assert 'targets: ["127.0.0.1:6066", "127.0.0.1:7000"]' in text
    assert "scrape_interval: 1500ms" in text
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool not installed: deploy/install.sh installs it (make test runs it)"
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alertmanager_config(tmp_path: Path) -> None:
    tmpl = tmp_path / "default.tmpl"
    tmpl.write_text("")
    text = render_alertmanager_config("http://127.0.0.1:9999/hook", 0.5, 2, tmpl)
    assert 'url: "http://127.0.0.1:9999/hook"' in text
    assert "group_wait: 500ms" in text and "group_interval: 2000ms" in text
    assert f'"{tmpl}"' in text
    amtool = shutil.which("amtool")
    assert amtool is not None, "amtool not installed: deploy/install.sh installs it (make test runs it)"
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    done = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_free_port_is_free_and_unique() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(1024 <= p < 65536 for p in ports)
    assert not port_open("127.0.0.1", ports[0])


class Sleeper(ManagedProcess):
    """A stand-in daemon: a Python process that sleeps."""

    name = "sleeper"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)", str(self.state_dir)]

    def is_ready(self) -> bool:
        return True

    @property
    def address(self) -> str:
        return "sleeper"


def test_process_lifecycle(tmp_path: Path) -> None:
    proc = Sleeper(tmp_path / "s")
    assert proc.status() is Status.STOPPED
    proc.start()
    pid = proc.pid()
    assert pid is not None and proc.status() is Status.RUNNING
    proc.start()  # idempotent
    assert proc.pid() == pid
    assert Sleeper(tmp_path / "s").status() is Status.RUNNING  # seen from a fresh launcher
    proc.kill()
    assert proc.status() is Status.CRASHED
    proc.start()  # recovers
    assert proc.status() is Status.RUNNING and proc.pid() != pid
    proc.stop()
    assert proc.status() is Status.STOPPED and not proc.pid_file.exists()


def test_stale_pid_file_of_foreign_process_is_crashed(tmp_path: Path) -> None:
    proc = Sleeper(tmp_path / "s")
    proc.state_dir.mkdir()
    proc.pid_file.write_text("1\n")  # alive, but not ours (cmdline lacks state_dir)
    assert proc.status() is Status.CRASHED


def test_start_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = int(sock.getsockname()[1])

        class Blocked(Sleeper):
            def ports(self) -> Sequence[int]:
                return (busy,)

        proc = Blocked(tmp_path / "b")
        with pytest.raises(StackError, match="already in use"):
            proc.start()
        assert proc.status() is Status.STOPPED


def test_webhook_recorder_records_posts(tmp_path: Path) -> None:
    rec = WebhookRecorder(jsonl=tmp_path / "alerts.jsonl")
    url = rec.start()
    try:
        body = {"status": "firing", "alerts": [{"labels": {"alertname": "X"}}]}
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        assert rec.wait_for(lambda p: p.get("status") == "firing", timeout=5) == body
        with pytest.raises(TimeoutError):
            rec.wait_for(lambda p: False, timeout=0.2)
        assert json.loads((tmp_path / "alerts.jsonl").read_text()) == body
    finally:
        rec.stop()
