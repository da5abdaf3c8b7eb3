"""Every dashboard query returns data from a real Prometheus scraping a real worker.

A worker consumes the built-in scenario (cut during the GPU-contention incident,
so an alert is firing), Prometheus 2.42 scrapes its ``/metrics`` every second with
the project's rules loaded, and every panel, annotation and variable query of every
dashboard runs through ``/api/v1/query`` with the variables set to the model and
host of that incident.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from dashboards.build import build_all
from dashboards.common import DATASOURCE_UID
from dashboards.queries import dashboard_queries, substitute
from streams.localstack import LocalPrometheus, free_port
from streams.scenario import HOSTS, MODELS, builtin
from streams.worker import spawn_worker, stop_worker, wait_healthy
from tests.integration.promql import all_queries, poll_queries, query
from tests.integration.service_helpers import replay_messages, run_settings, split, worker_log

pytestmark = pytest.mark.integration

MODEL, VERSION, HOST = MODELS[1], "v1", HOSTS[1]  # churn-ranker on gpu-node-2: the contention incident
VALUES = {"datasource": DATASOURCE_UID, "model": MODEL, "version": VERSION, "host": HOST, "feature": ".*"}


@pytest.fixture(scope="module")
def prometheus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("dashboards-live")
    settings = run_settings(kafka_bootstrap)
    scenario = builtin(rate=20.0)
    until_incident, _ = split(scenario, scenario.incidents[1].start + 20)
    log = tmp / "worker.log"
    worker = spawn_worker(settings, log)
    prom = LocalPrometheus(tmp / "prometheus", port=free_port(), scrape_targets=[f"127.0.0.1:{settings.web_port}"], scrape_interval=1.0)
    try:
        wait_healthy(settings.web_port, worker, log)
        prom.start()
        replaying = threading.Thread(target=replay_messages, args=(until_incident, settings, 20.0))
        replaying.start()
        replaying.join(120)
        deadline = time.monotonic() + 45
        ready = [f'inferwatch_alerts_firing{{model="{MODEL}"}} > 0', "model_gpu:inferwatch_gpu_utilization_ratio:max"]
        while not all(query(prom.address, expr)["result"] for expr in ready):
            if time.monotonic() > deadline:
                pytest.fail(f"worker metrics never reached Prometheus\n{prom.log_tail()}\n{worker_log(log)}")
            time.sleep(0.5)
        yield prom.address
    finally:
        stop_worker(worker)
        prom.stop()


def test_every_dashboard_query_returns_data_from_a_real_worker(prometheus: str) -> None:
    assert len(all_queries()) > 40
    empty, nan_only = poll_queries(prometheus, VALUES)
    assert not empty, "queries without series:\n" + "\n".join(empty)
    assert not nan_only, "queries with only NaN/Inf values:\n" + "\n".join(nan_only)


def test_join_panels_carry_the_model_and_its_gpus(prometheus: str) -> None:
    joins = [q for q in dashboard_queries(build_all()["inferwatch-model.json"]) if "model_gpu:" in q.expr]
    assert len(joins) >= 5
    for q in joins:
        result = query(prometheus, substitute(q.expr, VALUES))["result"]
        assert result, q.where
        assert {(s["metric"]["model"], s["metric"]["host"]) for s in result} == {(MODEL, HOST)}, q.where
        assert {s["metric"]["gpu"] for s in result} == {"0", "1"}, q.where
