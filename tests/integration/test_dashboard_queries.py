"""Dashboard queries and recording rules on controlled metrics, through a real Prometheus.

``metrics_target`` serves a ``/metrics`` endpoint filled by ``streams.metrics.Metrics``
from the built-in scenario (decoded with the real decoders) plus chosen detector
scores, throttle bits and alert counters, so the rules' semantics (joins, decoded
throttle reasons, drift ratios) can be checked against known values.  The same
queries against a real worker: ``test_dashboards_live.py``.
A Prometheus 2.42 scrapes it every second with deploy/prometheus/rules loaded; then
each panel, annotation and variable query of each dashboard runs through
``/api/v1/query`` with the variables set to a real model, version and host.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from dashboards.build import build_all
from dashboards.common import DATASOURCE_UID
from dashboards.queries import dashboard_queries, substitute
from streams.decoding import GpuDecoder, InferenceDecoder
from streams.errors import Rejected
from streams.localstack import LocalPrometheus, free_port
from streams.metrics import Metrics
from streams.scenario import HOSTS, MODELS, baseline
from streams.settings import Settings

from tests.integration.promql import all_queries, finite, poll_queries, query

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
MODEL, VERSION, HOST = MODELS[0], "v1", HOSTS[0]
VALUES = {"datasource": DATASOURCE_UID, "model": MODEL, "version": VERSION, "host": HOST, "feature": ".*"}
ALERT_KINDS = ("input_drift", "confidence_drift", "prediction_drift", "latency_anomaly", "gpu_anomaly", "correlated")


# -- the metrics endpoint ------------------------------------------------------------

class ScenarioFeeder:
    """Feeds ``Metrics`` from the scenario the way the worker would, in a background thread."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        settings = Settings()
        self.inference = InferenceDecoder(settings)
        self.gpu = GpuDecoder(settings)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scenario-feeder", daemon=True)

    def observe(self, topic: str, raw: bytes) -> None:
        source = "inference.events" if topic == "inference" else "gpu.metrics"
        try:
            if topic == "inference":
                for event in self.inference.decode(raw):
                    self.metrics.observe_event(event)
            else:
                for sample in self.gpu.decode(raw):
                    # ECC counters ride along in real DCGM samples; one GPU power-capped now and then.
                    sample.fields.setdefault("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 0.0)
                    if sample.host == HOSTS[1] and sample.gpu == 1:
                        sample.fields["DCGM_FI_DEV_CLOCKS_EVENT_REASONS"] = 4.0
                    self.metrics.observe_gpu(sample)
        except Rejected as exc:
            self.metrics.dead_letters.labels(source, exc.reason).inc()

    def set_detector_state(self) -> None:
        """Scores, thresholds, alerts, lag and deliveries a running worker would export."""
        m = self.metrics
        # Labels as streams.core.engine exports them: kind is the alert kind, thresholds are 1.
        features = [(f"x{j}", "input_drift", 0.2 + 0.05 * j) for j in range(6)] + [
            ("country", "input_drift", 0.03), ("amount", "input_drift", 0.4), ("_all_features", "input_drift", 0.37),
            ("confidence", "confidence_drift", 0.28), ("entropy", "confidence_drift", 0.28),
            ("prediction", "prediction_drift", 0.004),
        ]
        for model in MODELS:
            for feature, kind, score in features:
                drifting = model == MODEL and feature == "x0"
                m.drift_score.labels(model, VERSION, feature, kind).set(1.3 if drifting else score)
                m.drift_threshold.labels(model, VERSION, feature, kind).set(1.0)
            m.false_alarm_budget.labels(model, VERSION).set(0.05)
            for i, host in enumerate(HOSTS):
                m.latency_score.labels(model, VERSION, host).set(2.0 + i)
                m.latency_threshold.labels(model, VERSION, host).set(6.0)
            for kind in ALERT_KINDS:
                m.alerts_firing.labels(kind, model).set(1 if (model, kind) == (MODEL, "input_drift") else 0)
        for i, (host, gpu) in enumerate(itertools.product(HOSTS, range(2))):
            labels = (host, str(gpu), f"GPU-{host}-{gpu}")
            m.gpu_score.labels(*labels).set(0.5 + 0.3 * i)
            m.gpu_threshold.labels(*labels).set(3.0)
        m.alerts.labels("input_drift", "warning", "firing").inc()
        m.alerts.labels("latency_anomaly", "warning", "resolved").inc(2)
        for partition in range(3):
            m.consumer_lag.labels("inference.events", str(partition)).set(10 * partition)
        m.consumer_lag.labels("gpu.metrics", "0").set(4)
        m.delivered.inc(3)

    def _run(self) -> None:
        for seed in itertools.count():
            for i, message in enumerate(baseline(seed=seed, seconds=60, rate=20.0)):
                if self.stop.is_set():
                    return
                self.observe(message.topic, message.value)
                if i % 40 == 0:
                    time.sleep(0.05)  # ~800 messages/s: steady rates, little CPU


def _serve(registry: CollectorRegistry) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)


@pytest.fixture(scope="module")
def metrics_target() -> Iterator[str]:
    """``host:port`` of a /metrics endpoint exporting every inferwatch family with live traffic.

    Replace with the address of a running worker fed by the scenario to test the real one.
    """
    registry = CollectorRegistry()
    feeder = ScenarioFeeder(Metrics(registry))
    feeder.set_detector_state()
    server = _serve(registry)
    serving = threading.Thread(target=server.serve_forever, name="metrics-endpoint", daemon=True)
    serving.start()
    feeder.thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        feeder.stop.set()
        server.shutdown()
        server.server_close()
        feeder.thread.join(10)
        serving.join(10)


# -- Prometheus with the rules ---------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus(metrics_target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prometheus scraping ``metrics_target`` every second with the rules loaded,
    returned once the recorded rates exist (two scrapes and a rule evaluation later)."""
    prom = LocalPrometheus(
        tmp_path_factory.mktemp("prometheus-dashboards"), port=free_port(), scrape_targets=[metrics_target],
        scrape_interval=1.0, rule_files=[RULES / "recording.yml", RULES / "alerts.yml"],
    )
    prom.start()
    try:
        ready = ['model_version:inferwatch_events:rate1m{model="%s"} > 0' % MODEL,
                 "model_gpu:inferwatch_gpu_utilization_ratio:max",
                 'model_version:inferwatch_inference_latency_seconds:histogram_quantile{quantile="0.99"} > 0']
        deadline = time.monotonic() + 45
        while not all(query(prom.address, expr)["result"] for expr in ready):
            if time.monotonic() > deadline:
                pytest.fail(f"no recorded series after 45 s; prometheus log:\n{prom.log_tail()}")
            time.sleep(0.5)
        yield prom.address
    finally:
        prom.stop()


def test_every_dashboard_query_returns_data(prometheus: str) -> None:
    assert len(all_queries()) > 40
    empty, nan_only = poll_queries(prometheus, VALUES)
    assert not empty, "queries without series:\n" + "\n".join(empty)
    assert not nan_only, "queries with only NaN/Inf values:\n" + "\n".join(nan_only)


def test_gpu_join_panels_carry_model_and_gpu_labels(prometheus: str) -> None:
    model = build_all()["inferwatch-model.json"]
    joins = [q for q in dashboard_queries(model) if "model_gpu:" in q.expr]
    assert len(joins) >= 5
    for q in joins:
        result = query(prometheus, substitute(q.expr, VALUES))["result"]
        assert result, q.where
        for series in result:
            labels = series["metric"]
            assert labels.get("model") == MODEL and labels.get("host") == HOST and "gpu" in labels, (q.where, labels)


def _served(prometheus: str, model: str = ".*") -> set[tuple[str, str, str, str]]:
    """(model, host, gpu, uuid) the join key says are serving, straight from the info series."""
    info = query(prometheus, f'inferwatch_model_gpu_info{{model=~"{model}"}}')["result"]
    return {(s["metric"]["model"], s["metric"]["host"], s["metric"]["gpu"], s["metric"]["uuid"]) for s in info}


def test_recorded_joins_cover_every_gpu_of_every_model(prometheus: str) -> None:
    served = _served(prometheus)
    assert {m for m, *_ in served} == set(MODELS)
    for metric in ("inferwatch_gpu_utilization_ratio:max", "inferwatch_gpu_memory_used:ratio",
                   "inferwatch_gpu_power_watts:max", "inferwatch_gpu_temperature_celsius:max",
                   "inferwatch_gpu_anomaly_score:threshold_ratio"):
        result = query(prometheus, f"model_gpu:{metric}")["result"]
        pairs = {(s["metric"]["model"], s["metric"]["host"], s["metric"]["gpu"], s["metric"]["uuid"]) for s in result}
        assert pairs == served, metric
        assert all(finite(s["value"][1]) for s in result), metric


def test_raw_join_expression_matches_the_recorded_one(prometheus: str) -> None:
    raw = (f'inferwatch_gpu_utilization_ratio * on (host, gpu) group_left (model, version) '
           f'max by (host, gpu, model, version) (inferwatch_model_gpu_info{{model="{MODEL}", version=~"{VERSION}"}})')
    raw_result = query(prometheus, raw)["result"]
    recorded = query(prometheus, f'model_gpu:inferwatch_gpu_utilization_ratio:max{{model="{MODEL}"}}')["result"]
    expected = {(m, h, g) for m, h, g, _ in _served(prometheus, MODEL)}
    assert expected
    assert {(s["metric"]["model"], s["metric"]["host"], s["metric"]["gpu"]) for s in raw_result} == expected
    assert {(s["metric"]["model"], s["metric"]["host"], s["metric"]["gpu"]) for s in recorded} == expected


def test_decoded_throttle_reason_and_drift_ratio(prometheus: str) -> None:
    throttled = query(prometheus, "host_gpu:inferwatch_gpu_throttle_reason:active == 1")["result"]
    assert {(s["metric"]["host"], s["metric"]["gpu"], s["metric"]["reason"]) for s in throttled} == {
        (HOSTS[1], "1", "sw_power_cap")
    }
    past = query(prometheus, "model_feature:inferwatch_drift_score:threshold_ratio >= 1")["result"]
    assert [(s["metric"]["model"], s["metric"]["feature"]) for s in past] == [(MODEL, "x0")]


def test_no_service_alert_fires_on_a_healthy_worker(prometheus: str) -> None:
    assert query(prometheus, 'ALERTS{alertname=~"Inferwatch.*", alertstate="firing"}')["result"] == []
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as resp:  # noqa: S310
        groups = json.loads(resp.read())["data"]["groups"]
    names = {g["name"] for g in groups}
    assert {"inferwatch-gpu", "inferwatch-model-gpu", "inferwatch-model", "inferwatch-service"} <= names
    unhealthy = [r["name"] for g in groups for r in g["rules"] if r.get("health") not in ("ok", "unknown")]
    assert not unhealthy, unhealthy
