"""Producers and helpers without services: NVML reader, dcgm-exporter parser, replay routing, control, plot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.control import make_command, parse_command
from streams.decoding import GpuDecoder
from streams.errors import Rejected
from streams.gpu_bridge import parse_metrics
from streams.gpu_collect import read_sample
from streams.plot import latency_svg
from streams.records import Alert
from streams.replay import classify
from streams.settings import Settings


class FakeNvml:
    """Just enough of pynvml: one GPU whose ECC query is not supported."""

    NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC = 1, 0

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:  # noqa: N802 - pynvml's names
        return f"h{i}"

    def nvmlDeviceGetUUID(self, h: str) -> bytes:  # noqa: N802
        return b"GPU-abc"

    def nvmlDeviceGetUtilizationRates(self, h: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(used=30 * 1024**3, free=50 * 1024**3, total=80 * 1024**3)

    def nvmlDeviceGetTemperature(self, h: str, sensor: int) -> int:  # noqa: N802
        return 71

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:  # noqa: N802
        return 312_500  # milliwatts

    def nvmlDeviceGetClockInfo(self, h: str, clock: int) -> int:  # noqa: N802
        return 1410 if clock == self.NVML_CLOCK_SM else 1593

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: str) -> int:  # noqa: N802
        return 0x40

    def nvmlDeviceGetTotalEccErrors(self, h: str, kind: int, counter: int) -> int:  # noqa: N802
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")


def test_nvml_sample_uses_dcgm_names_and_base_units_and_skips_unsupported_fields() -> None:
    sample = read_sample(FakeNvml(), 0, "node-1", xid=79)
    assert (sample.host, sample.gpu, sample.uuid) == ("node-1", 0, "GPU-abc")
    f = sample.fields
    assert f["DCGM_FI_DEV_GPU_UTIL"] == 87 and f["DCGM_FI_DEV_FB_USED"] == 30 * 1024 and f["DCGM_FI_DEV_FB_TOTAL"] == 80 * 1024
    assert f["DCGM_FI_DEV_POWER_USAGE"] == 312.5 and f["DCGM_FI_DEV_CLOCKS_EVENT_REASONS"] == 0x40
    assert f["DCGM_FI_DEV_XID_ERRORS"] == 79
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" not in f



class FakeNvmlV2(FakeNvml):
    """Newer bindings: the ``_v2`` memory query (reservation apart), two GPUs, no XID events."""

    nvmlMemory_v2 = 0x02000028  # noqa: N815 - pynvml's name

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 2

    def nvmlDeviceGetMemoryInfo(self, h: str, version: int | None = None) -> SimpleNamespace:  # noqa: N802
        if version is None:  # v1: used includes the driver's reservation
            return SimpleNamespace(used=31 * 1024**3, free=49 * 1024**3, total=80 * 1024**3)
        return SimpleNamespace(used=30 * 1024**3, free=49 * 1024**3, reserved=1024**3, total=80 * 1024**3)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: str) -> int:  # noqa: N802
        return 0x4

    def nvmlEventSetCreate(self) -> None:  # noqa: N802
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")


def test_nvml_memory_leaves_out_the_reservation_and_reasons_use_the_new_name() -> None:
    f = read_sample(FakeNvmlV2(), 1, "node-1").fields
    assert (f["DCGM_FI_DEV_FB_USED"], f["DCGM_FI_DEV_FB_RESERVED"], f["DCGM_FI_DEV_FB_FREE"]) == (30 * 1024, 1024, 49 * 1024)
    assert f["DCGM_FI_DEV_CLOCKS_EVENT_REASONS"] == 0x4


def test_gpu_collect_cli_writes_decodable_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.gpu_collect.load_nvml", FakeNvmlV2)
    out = tmp_path / "samples.jsonl"
    result = CliRunner().invoke(main, ["gpu-collect", "--rounds", "2", "--interval", "0.01", "--host", "node-1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "sent 4 samples" in result.output
    samples = [s for line in out.read_bytes().splitlines() for s in GpuDecoder(Settings()).decode(line)]
    assert [(s.host, s.gpu) for s in samples] == [("node-1", 0), ("node-1", 1)] * 2


@pytest.mark.parametrize(("args", "message"), [(["--interval", "0"], "x>0.0"), (["--rounds", "0"], "x>=1")])
def test_gpu_collect_cli_rejects_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["gpu-collect", *args, "--output", "-"])
    assert result.exit_code == 2 and message in result.output.replace(" ", ""), result.output


def test_gpu_collect_cli_explains_a_node_whose_nvml_sees_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoGpus(FakeNvmlV2):
        def nvmlDeviceGetCount(self) -> int:  # noqa: N802
            return 0

    monkeypatch.setattr("streams.gpu_collect.load_nvml", NoGpus)
    result = CliRunner().invoke(main, ["gpu-collect", "--output", "-"])
    assert result.exit_code == 1 and "NVML sees no GPU on this node" in result.output


def test_gpu_collect_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # A pod stopping sends SIGTERM: the collector finishes its round, flushes, reports and exits 0.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pynvml.py").write_text(
        "from tests.unit.test_tools import FakeNvmlV2\n"
        "_nvml = FakeNvmlV2()\n"
        "def nvmlInit(): pass\n"
        "def __getattr__(name): return getattr(_nvml, name)\n"
    )
    out = tmp_path / "samples.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(Path(__file__).parents[2])])}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "gpu-collect", "--interval", "0.05", "--host", "node-1", "--output", str(out)],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.read_bytes().splitlines()
    assert f"sent {len(lines)} samples" in err and len(lines) >= 4 and len(lines) % 2 == 0  # whole rounds of two GPUs
    assert all(s.host == "node-1" for line in lines for s in GpuDecoder(Settings()).decode(line))


def test_gpu_collect_cli_explains_a_node_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise RuntimeError("NVML unavailable (no NVIDIA driver on this node?): NVML_ERROR_LIBRARY_NOT_FOUND")

    monkeypatch.setattr("streams.gpu_collect.load_nvml", missing)
    result = CliRunner().invoke(main, ["gpu-collect", "--output", "-"])
    assert result.exit_code == 1 and "no NVIDIA driver on this node?" in result.output


DCGM_TEXT = """# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",modelName="A100",Hostname="node-1"} 93
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",device="nvidia1",modelName="A100",Hostname="node-1"} 12
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",hostname="node-1"} 30000
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",hostname="node-1"} NaN
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="x",UUID="GPU-c",Hostname="node-1"} 50
# TYPE go_goroutines gauge
go_goroutines 12
"""


def test_dcgm_exporter_scrape_becomes_one_sample_per_gpu() -> None:
    samples = parse_metrics(DCGM_TEXT, now=5.0)
    assert [(s.host, s.gpu, s.uuid) for s in samples] == [("node-1", 0, "GPU-a"), ("node-1", 1, "GPU-b")]
    assert samples[0].fields == {"DCGM_FI_DEV_GPU_UTIL": 93.0, "DCGM_FI_DEV_FB_USED": 30000.0}
    assert samples[1].fields == {"DCGM_FI_DEV_GPU_UTIL": 12.0}  # NaN dropped, bad gpu label skipped


def test_dcgm_scrape_without_host_label_uses_the_default() -> None:
    (sample,) = parse_metrics('DCGM_FI_DEV_GPU_TEMP{gpu="0"} 60\n', default_host="edge-3")
    assert sample.host == "edge-3"


@pytest.mark.parametrize(
    ("line", "kind", "key"),
    [
        (b'{"ts": 1, "model": "m", "latency_ms": 3}', "inference", b"m"),
        (b'{"ts": 1, "host": "h", "gpu": 0, "DCGM_FI_DEV_GPU_UTIL": 5}', "gpu", b"h"),
        (b'{"name": "nvidia_smi", "tags": {"host": "h2", "index": "0"}, "fields": {}, "timestamp": 1}', "gpu", b"h2"),
        (b"not json", "inference", None),
        (b"[1, 2]", "inference", None),
    ],
)
def test_replay_routes_lines_by_shape(line: bytes, kind: str, key: bytes | None) -> None:
    assert classify(line)[:2] == (kind, key)


def test_control_commands_round_trip_and_bad_ones_are_rejected() -> None:
    command = make_command("relearn", "fraud", "v2")
    assert parse_command(json.dumps(command).encode()) == command
    for raw in (b"", b"[]", b'{"action": "explode", "model": "m"}', b'{"action": "reset"}'):
        with pytest.raises(Rejected) as info:
            parse_command(raw)
        assert info.value.reason == "bad_command"
    with pytest.raises(ValueError, match="reset, relearn"):
        make_command("delete", "m")


def test_plot_draws_latency_and_shades_alert_spans() -> None:
    alert = Alert(fingerprint="f", kind="latency_anomaly", status="firing", severity="warning", model="m", score=1, threshold=0.5, starts_at=10.0)
    svg = latency_svg({"m": [(float(t), 20.0 + t) for t in range(30)]}, [alert])
    assert svg.startswith("<svg") and "<polyline" in svg and "<rect" in svg and "latency_anomaly" in svg


@pytest.mark.parametrize("args, shows", [
    (["stack", "--help"], "usage: inferwatch stack [-h]"),
    (["stack", "up", "--help"], "--scrape-target HOST:PORT"),  # the subcommand's own options, not the wrapper's
])
def test_stack_help_is_the_stacks_own(args: list[str], shows: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and shows in result.output + capsys.readouterr().out


def test_gpu_bridge_rejects_an_interval_that_is_not_positive() -> None:
    result = CliRunner().invoke(main, ["gpu-bridge", "--scrape", "http://127.0.0.1:1/metrics", "--interval", "0"])
    assert result.exit_code == 2 and "--interval" in result.output
