"""The generated dashboards: current, complete, and made of PromQL that parses and
names only metrics the worker exports or the recording rules record."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from dashboards.build import BUILDERS, GENERATED, build_all, render, stale, write
from dashboards.cli import dashboards as dashboards_cli
from dashboards.common import DATASOURCE_UID, iter_panels
from dashboards.queries import dashboard_queries, label_values_selector, substitute
from streams.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "deploy" / "prometheus" / "rules" / "recording.yml"
UIDS = {"inferwatch-model", "inferwatch-drift", "inferwatch-gpu"}
VARIABLES = {"datasource", "model", "version", "host"}
VALUES = {"datasource": DATASOURCE_UID, "model": "fraud-detector", "version": "v1|v2", "host": ".*", "feature": ".*"}


@pytest.fixture(scope="module")
def built() -> dict[str, dict[str, Any]]:
    return build_all()


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard) if p.get("type") != "row"]


def test_committed_json_equals_a_fresh_build() -> None:
    assert stale(GENERATED) == [], "run `inferwatch dashboards build` and commit dashboards/generated/"


def test_stale_reports_changed_missing_and_extra_files(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale(tmp_path) == []
    (tmp_path / "inferwatch-gpu.json").write_text("{}\n")
    (tmp_path / "inferwatch-drift.json").unlink()
    (tmp_path / "old.json").write_text("{}\n")
    assert stale(tmp_path) == ["inferwatch-drift.json", "inferwatch-gpu.json", "old.json"]


def test_build_is_deterministic(built: dict[str, dict[str, Any]]) -> None:
    again = build_all()
    assert {name: render(d) for name, d in built.items()} == {name: render(d) for name, d in again.items()}


def test_cli_build_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(dashboards_cli, ["build", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BUILDERS)
    assert runner.invoke(dashboards_cli, ["build", "--dir", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "inferwatch-model.json").write_text("{}\n")
    result = runner.invoke(dashboards_cli, ["build", "--dir", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert "inferwatch-model.json" in result.output


def test_uids_titles_and_tags(built: dict[str, dict[str, Any]]) -> None:
    assert {d["uid"] for d in built.values()} == UIDS
    for name, dashboard in built.items():
        assert name == f"{dashboard['uid']}.json"
        assert dashboard["title"].startswith("inferwatch / ")
        assert "inferwatch" in dashboard["tags"]


def test_every_dashboard_has_the_four_variables(built: dict[str, dict[str, Any]]) -> None:
    for dashboard in built.values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert VARIABLES <= set(variables), dashboard["uid"]
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
        for name in ("model", "version", "host"):
            assert variables[name]["type"] == "query"
            assert variables[name]["datasource"]["uid"] == "${datasource}"
            assert label_values_selector(variables[name]["query"]), variables[name]["query"]
        assert not variables["model"]["multi"]
        assert variables["version"]["multi"] and variables["version"]["allValue"] == ".*"
        assert variables["host"]["multi"] and variables["host"]["allValue"] == ".*"


def test_links_keep_time_and_variables(built: dict[str, dict[str, Any]]) -> None:
    for dashboard in built.values():
        links = dashboard["links"]
        assert links, dashboard["uid"]
        for link in links:
            assert link["type"] == "dashboards" and link["tags"] == ["inferwatch"]
            assert link["keepTime"] is True and link["includeVars"] is True


def test_every_panel_has_unit_datasource_thresholds_and_queries(built: dict[str, dict[str, Any]]) -> None:
    for dashboard in built.values():
        panels = _panels(dashboard)
        assert len({p["id"] for p in iter_panels(dashboard)}) == len(iter_panels(dashboard))
        for panel in panels:
            where = f"{dashboard['uid']}: {panel['title']}"
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit"), where
            assert defaults["thresholds"]["steps"][0]["value"] is None, where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel.get("description"), where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", where
                assert target["refId"], where
            if panel["type"] == "heatmap":
                assert panel["options"]["yAxis"]["unit"], where


def test_model_overview_content(built: dict[str, dict[str, Any]]) -> None:
    dashboard = built["inferwatch-model.json"]
    titles = {p["title"]: p for p in _panels(dashboard)}
    for title in ("Request rate", "Latency p50 / p95 / p99", "Confidence distribution", "Mean confidence",
                  "Predicted-class shares", "Top drifting features", "GPU utilisation", "GPU memory used",
                  "GPU power", "GPU temperature", "GPU throttle reasons"):
        assert title in titles
    latency = " ".join(t["expr"] for t in titles["Latency p50 / p95 / p99"]["targets"])
    assert latency.count("histogram_quantile(") == 3
    assert "inferwatch_inference_latency_seconds_bucket" in latency
    assert titles["Confidence distribution"]["type"] == "heatmap"
    assert titles["Confidence distribution"]["targets"][0]["format"] == "heatmap"
    assert "topk(" in titles["Top drifting features"]["targets"][0]["expr"]
    assert "model_gpu:" in titles["GPU utilisation"]["targets"][0]["expr"]
    assert {a["name"] for a in dashboard["annotations"]["list"]} >= {"Model alerts"}


def _known_metrics() -> set[str]:
    """Sample names the worker exports (streams.metrics) plus the recorded series."""
    names = {"ALERTS", "up"}
    for family in Metrics(CollectorRegistry()).registry.collect():
        base = family.name
        if family.type == "counter":
            names.add(f"{base}_total")
        elif family.type == "histogram":
            names.update({f"{base}_bucket", f"{base}_sum", f"{base}_count"})
        else:
            names.add(base)
    names.update(re.findall(r"^\s*- record:\s*(\S+)", RECORDING.read_text(), re.M))
    return names


def test_queries_name_only_exported_or_recorded_metrics(built: dict[str, dict[str, Any]]) -> None:
    known = _known_metrics()
    for dashboard in built.values():
        for query in dashboard_queries(dashboard):
            used = set(re.findall(r"\b(?:ALERTS|inferwatch_\w+|\w+:\w+:\w+)\b", query.expr))
            assert used, f"{query.dashboard} {query.where}: no metric in {query.expr}"
            assert used <= known, f"{query.dashboard} {query.where}: unknown {sorted(used - known)}"


def test_substitute_fills_variables_and_builtins() -> None:
    expr = 'rate(x{model="$model", version=~"${version}"}[$__rate_interval])'
    assert substitute(expr, {"model": "m", "version": "v1"}) == 'rate(x{model="m", version=~"v1"}[1m])'
    with pytest.raises(KeyError, match="host"):
        substitute("x{host=~\"$host\"}", {})


def test_every_expr_parses_with_promtool(built: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool not installed: deploy/install.sh installs it (make test runs it)"
    queries = [q for d in built.values() for q in dashboard_queries(d)]
    assert len(queries) > 40
    lines = ["groups:", "  - name: dashboard-queries", "    rules:"]
    for i, query in enumerate(queries):
        expr = substitute(query.expr, VALUES).replace("'", "''")
        lines += [f"      - record: dashboard_query_{i}", f"        expr: '{expr}'"]
    rules = tmp_path / "queries.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        failing = [f"{q.dashboard} {q.where}: {q.expr}" for i, q in enumerate(queries)
                   if f"dashboard_query_{i}" in result.stdout + result.stderr]
        pytest.fail(f"promtool rejected dashboard queries:\n{result.stdout}{result.stderr}\n" + "\n".join(failing))
    assert f"{len(queries)} rules found" in result.stdout


def test_grafana_provisioning_matches_the_dashboards() -> None:
    provisioning = REPO / "deploy" / "grafana" / "provisioning"
    datasource = (provisioning / "datasources" / "inferwatch.yml").read_text()
    assert re.search(rf"^\s+uid:\s*{DATASOURCE_UID}\s*$", datasource, re.M)
    assert re.search(r"^\s+type:\s*prometheus\s*$", datasource, re.M)
    provider = (provisioning / "dashboards" / "inferwatch.yml").read_text()
    assert re.search(r"^\s+type:\s*file\s*$", provider, re.M)
    assert re.search(r"^\s+path:\s*/\S+\s*$", provider, re.M)
    assert "dashboards/generated" in provider  # says what to mount there


def test_panel_data_links_keep_time_and_model(built: dict[str, dict[str, Any]]) -> None:
    links = [link for d in built.values() for p in _panels(d) for link in p["fieldConfig"]["defaults"].get("links", [])]
    assert links
    for link in links:
        assert link["url"].startswith("/d/inferwatch-")
        assert "${__url_time_range}" in link["url"] and "${model:queryparam}" in link["url"]
