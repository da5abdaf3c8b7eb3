"""GPU fleet (uid ``inferwatch-gpu``): every GPU with its anomaly score, telemetry,
hard-signal events (XID, throttling, uncorrectable ECC) and the models it serves.

The GPU series are the DCGM fields the worker re-exports from the GPU topic
(``inferwatch_gpu_*{host,gpu,uuid}``), so this works where dcgm-exporter is not scraped.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    GREEN,
    assemble,
    base_dashboard,
    q,
    stat_panel,
    state_panel,
    steps,
    table_panel,
    timeseries_panel,
)

UID = "inferwatch-gpu"
TITLE = "inferwatch / GPU fleet"

HOST_SEL = 'host=~"$host"'
_LEGEND = "{{host}} / GPU {{gpu}}"
_RATIO_STEPS = steps((None, GREEN), (0.8, "orange"), (1.0, "red"))


def _gauge(metric: str) -> str:
    return f"max by (host, gpu) ({metric}{{{HOST_SEL}}})"


def _overview(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Fleet"))
    d = d.with_panel(stat_panel(
        "GPUs reporting",
        "GPUs with samples on the GPU topic (selected hosts).",
        [q(f"count({_gauge('inferwatch_gpu_utilization_ratio')})")],
        unit="none", thresholds=steps((None, GREEN)), w=6,
    ))
    d = d.with_panel(stat_panel(
        "GPUs past anomaly threshold",
        "GPUs whose anomaly score is at or above its threshold now.",
        [q(f"count(host_gpu:inferwatch_gpu_anomaly_score:threshold_ratio{{{HOST_SEL}}} >= 1) or vector(0)")],
        unit="none", thresholds=steps((None, GREEN), (1, "red")), w=6,
    ))
    d = d.with_panel(stat_panel(
        "GPUs throttling",
        "GPUs with at least one throttle reason (power cap, HW slowdown, thermal, power brake) active.",
        [q(f"count(max by (host, gpu) (host_gpu:inferwatch_gpu_throttle_reason:active{{{HOST_SEL}}}) > 0) "
           "or vector(0)")],
        unit="none", thresholds=steps((None, GREEN), (1, "orange")), w=6,
    ))
    d = d.with_panel(stat_panel(
        "GPU samples",
        "GPU samples consumed per second on the selected hosts.",
        [q(f"sum(rate(inferwatch_gpu_samples_total{{{HOST_SEL}}}[$__rate_interval]))")],
        unit="cps", thresholds=steps((None, "red"), (0.01, GREEN)), w=6,
    ))
    d = d.with_panel(timeseries_panel(
        "GPU anomaly score / threshold",
        "Multivariate GPU anomaly score (utilisation, memory, temperature, power, clocks) over its "
        "threshold; at 1 (dashed) the detector alerts.",
        [q(f"max by (host, gpu) (host_gpu:inferwatch_gpu_anomaly_score:threshold_ratio{{{HOST_SEL}}})", _LEGEND)],
        unit="none", thresholds=_RATIO_STEPS, w=12, min_val=0, threshold_lines=True,
    ))
    d = d.with_panel(table_panel(
        "Models on each GPU",
        "Which model versions each GPU served recently (inferwatch_model_gpu_info, the dashboards' join key).",
        [q(f"max by (host, gpu, uuid, model, version) (inferwatch_model_gpu_info{{{HOST_SEL}}})", "")],
        unit="none", thresholds=steps((None, GREEN)), w=12, hide=("Time", "Value"),
    ))
    return d


def _telemetry(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Telemetry"))
    d = d.with_panel(timeseries_panel(
        "Utilisation", "GPU utilisation per GPU.",
        [q(_gauge("inferwatch_gpu_utilization_ratio"), _LEGEND)],
        unit="percentunit", thresholds=steps((None, GREEN), (0.9, "orange"), (0.98, "red")), w=8, min_val=0, max_val=1,
    ))
    d = d.with_panel(timeseries_panel(
        "Memory used", "Framebuffer in use / total per GPU.",
        [q(f"max by (host, gpu) (host_gpu:inferwatch_gpu_memory_used:ratio{{{HOST_SEL}}})", _LEGEND)],
        unit="percentunit", thresholds=steps((None, GREEN), (0.9, "orange"), (0.95, "red")), w=8, min_val=0, max_val=1,
        threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "Power", "Power draw per GPU.",
        [q(_gauge("inferwatch_gpu_power_watts"), _LEGEND)],
        unit="watt", thresholds=steps((None, GREEN), (350, "orange"), (400, "red")), w=8, min_val=0,
    ))
    d = d.with_panel(timeseries_panel(
        "Temperature", "Core temperature per GPU.",
        [q(_gauge("inferwatch_gpu_temperature_celsius"), _LEGEND)],
        unit="celsius", thresholds=steps((None, GREEN), (80, "orange"), (90, "red")), w=8, threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "SM clock", "Streaming-multiprocessor clock per GPU; drops while throttling.",
        [q(_gauge("inferwatch_gpu_sm_clock_hertz"), _LEGEND)],
        unit="hertz", thresholds=steps((None, GREEN)), w=8, min_val=0,
    ))
    d = d.with_panel(timeseries_panel(
        "Memory clock", "Memory clock per GPU.",
        [q(_gauge("inferwatch_gpu_memory_clock_hertz"), _LEGEND)],
        unit="hertz", thresholds=steps((None, GREEN)), w=8, min_val=0,
    ))
    return d


def _hard_signals(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Hard signals"))
    d = d.with_panel(state_panel(
        "Throttle reasons",
        "Clock event reasons per GPU, decoded from the DCGM bitmask: sw_power_cap, hw_slowdown, "
        "sw_thermal, hw_thermal, hw_power_brake.",
        [q(f"max by (host, gpu, reason) (host_gpu:inferwatch_gpu_throttle_reason:active{{{HOST_SEL}}})",
           "{{host}} / GPU {{gpu}} {{reason}}")],
        unit="bool", thresholds=steps((None, GREEN), (1, "red")), w=24, h=10,
        mappings={"0": ("ok", GREEN), "1": ("throttled", "red")},
    ))
    d = d.with_panel(state_panel(
        "XID errors",
        "Last XID error code per GPU (0 = none). 48 (double-bit ECC), 79 (fallen off the bus) and "
        "94/95 (contained/uncontained ECC) usually need the GPU drained.",
        [q(_gauge("inferwatch_gpu_last_xid"), _LEGEND)],
        unit="none", thresholds=steps((None, GREEN), (1, "red")), w=12,
        mappings={"0": ("none", GREEN)},
    ))
    d = d.with_panel(state_panel(
        "Uncorrectable ECC errors",
        "Volatile double-bit ECC errors per GPU since the last driver reload; any is a reason to drain it.",
        [q(_gauge("inferwatch_gpu_ecc_uncorrectable_errors"), _LEGEND)],
        unit="none", thresholds=steps((None, GREEN), (1, "red")), w=12,
        mappings={"0": ("none", GREEN)},
    ))
    return d


def build() -> dict[str, Any]:
    """The GPU fleet dashboard as Grafana JSON."""
    d = base_dashboard(
        UID, TITLE,
        "Every GPU: anomaly score, telemetry, hard-signal events and the models it serves.",
        "label_values(inferwatch_gpu_utilization_ratio, host)",
    )
    return assemble(d, (_overview, _telemetry, _hard_signals))
