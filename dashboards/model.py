"""Model overview (uid ``inferwatch-model``): one model's traffic, latency, confidence,
drift and alerts, with the GPUs that serve it beside them on the same time axis.

GPU panels read the ``model_gpu:*`` recording rules, which join the GPU gauges to
``inferwatch_model_gpu_info`` on ``(host, gpu)`` and so carry ``model``/``version``
next to ``host``/``gpu``/``uuid``.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    DATASOURCE,
    GREEN,
    MODEL_SEL,
    alerts_firing_panel,
    assemble,
    base_dashboard,
    bars,
    data_link,
    heatmap_panel,
    q,
    stat_panel,
    state_panel,
    steps,
    timeseries_panel,
)

UID = "inferwatch-model"
TITLE = "inferwatch / Model overview"

#: GPUs serving the selected model on the selected hosts (for the join panels).
GPU_SEL = f'{MODEL_SEL}, host=~"$host"'
_LAT = f'inferwatch_inference_latency_seconds_bucket{{{MODEL_SEL}, host=~"$host"}}'
_GPU_LEGEND = "{{host}} / GPU {{gpu}}"


def annotations() -> list[db.AnnotationQuery]:
    """The model's inferwatch alerts and Prometheus' own inferwatch service alerts."""
    model_alerts = (
        db.AnnotationQuery()
        .name("Model alerts")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr('sum by (model, kind) (inferwatch_alerts_firing{model="$model"}) > 0')
        .title_format("{{kind}} firing")
        .text_format("{{model}}: {{kind}} alert firing")
        .tag_keys("kind,model")
        .step("30s")
    )
    service_alerts = (
        db.AnnotationQuery()
        .name("Service alerts")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("orange")
        .expr('ALERTS{alertname=~"Inferwatch.*", alertstate="firing"}')
        .title_format("{{alertname}}")
        .text_format("{{alertname}} {{instance}}{{topic}}")
        .tag_keys("alertname,severity")
        .step("30s")
    )
    return [model_alerts, service_alerts]


def _traffic(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Traffic and latency"))
    d = d.with_panel(timeseries_panel(
        "Request rate",
        "Inference events per second consumed for this model, per version.",
        [q(f"sum by (version) (rate(inferwatch_events_total{{{MODEL_SEL}}}[$__rate_interval]))", "{{version}}")],
        unit="reqps", thresholds=steps((None, GREEN)), w=8, min_val=0,
    ))
    d = d.with_panel(timeseries_panel(
        "Latency p50 / p95 / p99",
        "Quantiles of the latency reported by the model server, over all selected hosts "
        "(histogram_quantile over inferwatch_inference_latency_seconds_bucket).",
        [
            q(f"histogram_quantile({p}, sum by (le) (rate({_LAT}[$__rate_interval])))", f"p{label}")
            for p, label in ((0.5, "50"), (0.95, "95"), (0.99, "99"))
        ],
        unit="s", thresholds=steps((None, GREEN), (0.5, "orange"), (1.0, "red")), w=8, min_val=0,
        threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "Latency p95 by host",
        "95th percentile latency per serving host: one slow host shows here first.",
        [q(f"histogram_quantile(0.95, sum by (host, le) (rate({_LAT}[$__rate_interval])))", "{{host}}")],
        unit="s", thresholds=steps((None, GREEN), (0.5, "orange"), (1.0, "red")), w=8, min_val=0,
    ))
    d = d.with_panel(timeseries_panel(
        "Latency anomaly score / threshold",
        "Latency detector score divided by its threshold, per host; 1 (dashed line) is where it alerts.",
        [q(f'max by (host) (inferwatch_latency_anomaly_score{{{GPU_SEL}}} '
           f'/ inferwatch_latency_anomaly_threshold{{{GPU_SEL}}})', "{{host}}")],
        unit="none", thresholds=steps((None, GREEN), (0.8, "orange"), (1.0, "red")), w=12, min_val=0,
        threshold_lines=True,
    ))
    d = d.with_panel(alerts_firing_panel(
        "Alerts firing",
        "inferwatch alerts currently firing for this model, by kind (input_drift, latency_anomaly, ...); "
        "a single 0 series named none until the first alert.",
        'model="$model"', w=12,
    ))
    return d


def _confidence(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Confidence and predictions"))
    d = d.with_panel(heatmap_panel(
        "Confidence distribution",
        "How many predictions fell in each 0.05-wide confidence bucket per interval. A shift of "
        "the mass downwards is confidence drift.",
        q(f"sum by (le) (increase(inferwatch_inference_confidence_ratio_bucket{{{MODEL_SEL}}}[$__rate_interval]))",
          "{{le}}"),
        unit="percentunit", thresholds=steps((None, GREEN)), w=10,
    ))
    d = d.with_panel(timeseries_panel(
        "Mean confidence",
        "Mean top-class probability per version.",
        [q(f"sum by (version) (rate(inferwatch_inference_confidence_ratio_sum{{{MODEL_SEL}}}[$__rate_interval])) "
           f"/ sum by (version) (rate(inferwatch_inference_confidence_ratio_count{{{MODEL_SEL}}}[$__rate_interval]))",
           "{{version}}")],
        unit="percentunit", thresholds=steps((None, "red"), (0.6, "orange"), (0.75, GREEN)), w=7,
        min_val=0, max_val=1,
    ))
    d = d.with_panel(timeseries_panel(
        "Predicted-class shares",
        "Share of predictions per predicted class (stacked to 100%). Prediction drift moves these bands.",
        [q(f"sum by (prediction) (rate(inferwatch_predictions_total{{{MODEL_SEL}}}[$__rate_interval])) "
           f"/ ignoring (prediction) group_left "
           f"sum(rate(inferwatch_predictions_total{{{MODEL_SEL}}}[$__rate_interval]))", "{{prediction}}")],
        unit="percentunit", thresholds=steps((None, GREEN)), w=7, min_val=0, max_val=1, stack=True,
    ))
    return d


def _drift(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Input drift"))
    d = d.with_panel(bars(
        "Top drifting features",
        "The 10 features whose drift score is closest to (or past) its threshold, as score / threshold; "
        "1 is where the feature's detector alerts. Details on the Drift detail dashboard.",
        [q(f"topk(10, max by (feature, kind) (model_feature:inferwatch_drift_score:threshold_ratio{{{MODEL_SEL}}}))",
           "{{feature}} ({{kind}})", instant=True)],
        unit="none", thresholds=steps((None, GREEN), (0.8, "orange"), (1.0, "red")), w=12, h=9,
    ).data_links([data_link("Drift detail for ${__field.labels.feature}", "inferwatch-drift",
                            "&var-feature=${__field.labels.feature}")]))
    d = d.with_panel(timeseries_panel(
        "Top drifting features over time",
        "Drift score / threshold of the 5 features highest now.",
        [q(f"topk(5, max by (feature, kind) (model_feature:inferwatch_drift_score:threshold_ratio{{{MODEL_SEL}}}))",
           "{{feature}} ({{kind}})")],
        unit="none", thresholds=steps((None, GREEN), (0.8, "orange"), (1.0, "red")), w=12, h=9, min_val=0,
        threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "False-alarm budget per detector",
        "False alarms per million events each detector of the version may raise with no change: "
        "INFERWATCH_FALSE_ALARMS_PER_MILLION, or its share of INFERWATCH_FALSE_ALERTS_PER_MODEL_PER_DAY "
        "at the version's event rate (it steps down as traffic grows, up as it falls).",
        [q(f"max by (version) (inferwatch_false_alarms_per_million{{{MODEL_SEL}}})", "{{version}}")],
        unit="none", thresholds=steps((None, GREEN)), w=24, h=6, min_val=0,
    ))
    return d


def _gpus(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("GPUs serving this model"))
    joined = "max by (model, host, gpu) ({metric}{{" + GPU_SEL + "}})"
    d = d.with_panel(timeseries_panel(
        "GPU utilisation",
        "Utilisation of every GPU that served this model (joined through inferwatch_model_gpu_info).",
        [q(joined.format(metric="model_gpu:inferwatch_gpu_utilization_ratio:max"), _GPU_LEGEND)],
        unit="percentunit", thresholds=steps((None, GREEN), (0.9, "orange"), (0.98, "red")), w=8,
        min_val=0, max_val=1,
    ).data_links([data_link("GPU fleet: ${__field.labels.host}", "inferwatch-gpu", "&var-host=${__field.labels.host}")]))
    d = d.with_panel(timeseries_panel(
        "GPU memory used",
        "Framebuffer in use / total, per GPU serving this model.",
        [q(joined.format(metric="model_gpu:inferwatch_gpu_memory_used:ratio"), _GPU_LEGEND)],
        unit="percentunit", thresholds=steps((None, GREEN), (0.9, "orange"), (0.95, "red")), w=8,
        min_val=0, max_val=1, threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "GPU anomaly score / threshold",
        "The GPU detector's score over its threshold for the GPUs serving this model; 1 is where it alerts.",
        [q(joined.format(metric="model_gpu:inferwatch_gpu_anomaly_score:threshold_ratio"), _GPU_LEGEND)],
        unit="none", thresholds=steps((None, GREEN), (0.8, "orange"), (1.0, "red")), w=8, min_val=0,
        threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "GPU power",
        "Power draw per GPU serving this model.",
        [q(joined.format(metric="model_gpu:inferwatch_gpu_power_watts:max"), _GPU_LEGEND)],
        unit="watt", thresholds=steps((None, GREEN), (350, "orange"), (400, "red")), w=8, min_val=0,
    ))
    d = d.with_panel(timeseries_panel(
        "GPU temperature",
        "Core temperature per GPU serving this model.",
        [q(joined.format(metric="model_gpu:inferwatch_gpu_temperature_celsius:max"), _GPU_LEGEND)],
        unit="celsius", thresholds=steps((None, GREEN), (80, "orange"), (90, "red")), w=8, threshold_lines=True,
    ))
    d = d.with_panel(state_panel(
        "GPU throttle reasons",
        "Clock event reasons active (1) on the GPUs serving this model: power cap, HW slowdown, "
        "thermal, power brake. Latency often rises while a GPU throttles.",
        [q('max by (host, gpu, reason) (host_gpu:inferwatch_gpu_throttle_reason:active{host=~"$host"} '
           f'and on (host, gpu) inferwatch_model_gpu_info{{{MODEL_SEL}}})',
           "{{host}} / GPU {{gpu}} {{reason}}")],
        unit="bool", thresholds=steps((None, GREEN), (1, "red")), w=8,
        mappings={"0": ("ok", GREEN), "1": ("throttled", "red")},
    ))
    return d


def _service(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("inferwatch service"))
    d = d.with_panel(stat_panel(
        "Consumer lag",
        "Messages behind the end of the input topics, all partitions.",
        [q("sum(inferwatch_consumer_lag_messages)")],
        unit="short", thresholds=steps((None, GREEN), (1000, "orange"), (10000, "red")), w=6,
    ))
    d = d.with_panel(stat_panel(
        "Dead letters",
        "Messages per second that could not be decoded and went to the dead-letter topic.",
        [q("sum(rate(inferwatch_dead_letters_total[$__rate_interval])) or vector(0)")],
        unit="cps", thresholds=steps((None, GREEN), (0.1, "orange"), (1, "red")), w=6,
    ))
    d = d.with_panel(stat_panel(
        "Alert transitions",
        "Alert records published per second (firing and resolved, all kinds).",
        [q("sum(rate(inferwatch_alerts_total[$__rate_interval])) or vector(0)")],
        unit="cps", thresholds=steps((None, GREEN)), w=6,
    ))
    d = d.with_panel(stat_panel(
        "Alertmanager delivery failures",
        "Failed posts to Alertmanager per second (retried; alerts wait in Kafka meanwhile).",
        [q("sum(rate(inferwatch_alertmanager_delivery_failures_total[$__rate_interval]))")],
        unit="cps", thresholds=steps((None, GREEN), (0.001, "red")), w=6,
    ))
    return d


def build() -> dict[str, Any]:
    """The model overview dashboard as Grafana JSON."""
    d = base_dashboard(
        UID, TITLE,
        "One model: traffic, latency, confidence, drift and alerts, with the GPUs that serve it.",
        'label_values(inferwatch_inference_latency_seconds_count{model="$model", version=~"$version"}, host)',
    )
    return assemble(d.annotations(annotations()), (_traffic, _confidence, _drift, _gpus, _service))
