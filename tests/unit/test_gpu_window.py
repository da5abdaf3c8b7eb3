"""A GPU state row carries what the GPU did over the last correlation window, and alerts' GPU context with it."""

from __future__ import annotations

import pickle

from streams.backtest import run
from streams.core.detectors import DetectorFactory
from streams.core.gpu_monitor import HostMonitor
from streams.core.gpu_window import GpuWindow
from streams.records import GpuSample
from streams.scenario import HOSTS, GpuContention, Scenario
from streams.settings import Settings

UTIL, TEMP, REASONS = "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"


def test_the_summary_covers_the_last_window_of_event_time_only() -> None:
    window = GpuWindow(seconds=10)
    for t in range(30):
        window.add(100.0 + t, {UTIL: float(t), TEMP: 60.0, REASONS: 0.0 if t < 25 else 32.0})
    window.add(120.0, {UTIL: 99.0})  # late, but within the window of the newest (129): kept
    window.add(105.0, {UTIL: -1.0})  # too old: never kept
    window.add(130.5, {TEMP: 61.0})  # no utilisation in this one; 120 is now out
    summary = window.summary()
    assert summary["seconds"] == 10 and summary["samples"] == 10  # 120.5 .. 130.5: 121-129 and the last
    assert summary["util_pct"] == [21.0, 25.0, 29.0]
    assert summary["temp_c"] == [60.0, 60.1, 61.0]
    assert summary["clock_event_reasons_any"] == 32
    assert "power_w" not in summary


def test_the_window_is_capped_in_samples() -> None:
    window = GpuWindow(seconds=1e9, max_samples=5)
    for t in range(20):
        window.add(float(t), {UTIL: float(t)})
    assert window.summary()["samples"] == 5 and window.summary()["util_pct"][0] == 15.0


def sample(ts: float, util: float) -> GpuSample:
    return GpuSample(ts=ts, host="node-1", gpu=0, fields={UTIL: util, TEMP: 60.0})


def test_state_rows_carry_the_summary_and_old_host_snapshots_restore() -> None:
    monitor = HostMonitor("node-1", DetectorFactory(gpu_warmup=100), quiet_after=60.0)
    (state,), _, _ = monitor.process([sample(1000.0 + t, 50.0 + t % 10) for t in range(200)])
    # t = 139 .. 199: utilisation 59, then 50 .. 59 six times
    assert state.window["util_pct"] == [50.0, round(50 + (9 + 6 * 45) / 61, 1), 59.0] and state.window["samples"] == 61
    assert state.context()["window"] == state.window
    old = pickle.loads(pickle.dumps(monitor))
    del old.__dict__["windows"]  # a snapshot from before window summaries
    restored = pickle.loads(pickle.dumps(old))
    (state,), _, _ = restored.process([sample(1300.0, 80.0)])
    assert state.window["samples"] == 1 and state.window["util_pct"] == [80.0, 80.0, 80.0]


def test_a_correlated_alert_shows_the_gpus_busy_through_the_window() -> None:
    scenario = Scenario(seconds=220, rate=10.0, incidents=(GpuContention(host=HOSTS[1], start=150, end=200),), malformed=False)
    settings = Settings(warmup_events=1000, gpu_warmup_samples=100, resolve_after_seconds=30.0)
    result = run(((m.topic, m.value) for m in scenario.messages()), settings)
    (alert,) = [a for a in result.alerts if a.kind == "correlated" and a.status == "firing"]
    for row in alert.gpu_context:
        window = row["window"]
        assert window["seconds"] == settings.correlation_window_seconds and window["samples"] >= 50
        low, mean, high = window["util_pct"]
        assert low < 80 and high > 90  # the window reaches back before the contention began
        assert row["util_pct"] > 90
