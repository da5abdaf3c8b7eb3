"""deploy/kubernetes: the manifests validate, the example overlay renders, the generated
files are current, and the pieces agree with each other and with the code.

Built-in kinds are checked against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail).  The CRDs (ServiceMonitor, PrometheusRule, KafkaTopic) are
not in those schemas, so their structure is checked here, minimally.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
EXAMPLE = KUBE / "overlays" / "example"
#: Oldest Kubernetes minor the manifests are meant for, and the newest schemas available.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def _generate_module() -> Any:
    spec = importlib.util.spec_from_file_location("inferwatch_k8s_generate", KUBE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifest_files() -> list[Path]:
    """Every YAML file under deploy/kubernetes that is a resource (not a kustomization)."""
    files = sorted(p for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml")
    assert files
    return files


def _kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl (with its built-in kustomize) is part of this machine image; it is missing"
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/kubernetes/overlays/example``, parsed."""
    return _kustomize(EXAMPLE)


@pytest.fixture(scope="module")
def rendered_base() -> list[dict[str, Any]]:
    return _kustomize(BASE)


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# -- schemas ---------------------------------------------------------------------


def _validate(doc: dict[str, Any]) -> None:
    """Kubernetes schema for built-in kinds, the minimal structure for the known CRDs."""
    assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str), doc
    name = doc.get("metadata", {}).get("name", "")
    assert DNS1123.match(name) and len(name) <= 253, f"{doc['kind']} name {name!r}"
    if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
        CRD_CHECKS[doc["kind"]](doc)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def _check_service_monitor(doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    assert set(spec) <= {"jobLabel", "selector", "endpoints", "namespaceSelector", "targetLabels", "podTargetLabels"}, spec
    assert spec["selector"].get("matchLabels"), "a ServiceMonitor must select its Service by labels"
    assert spec["endpoints"], "no endpoints"
    for endpoint in spec["endpoints"]:
        assert isinstance(endpoint.get("port"), str) and endpoint.get("path", "/metrics").startswith("/")
        assert re.fullmatch(r"\d+s", endpoint.get("interval", "30s")), endpoint


def _check_prometheus_rule(doc: dict[str, Any]) -> None:
    groups = doc["spec"]["groups"]
    assert groups and len({g["name"] for g in groups}) == len(groups), "groups need unique names"
    for group in groups:
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert ("record" in rule) != ("alert" in rule), rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule
            assert set(rule) <= {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            if "record" in rule:
                assert "for" not in rule and "annotations" not in rule, rule


def _check_kafka_topic(doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    assert doc["metadata"]["labels"].get("strimzi.io/cluster"), "KafkaTopic needs the strimzi.io/cluster label"
    assert set(spec) <= {"topicName", "partitions", "replicas", "config"}, spec
    assert KAFKA_TOPIC.match(spec.get("topicName", doc["metadata"]["name"])), spec
    assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1, spec
    assert isinstance(spec["replicas"], int) and 1 <= spec["replicas"] <= 32767, spec
    config = spec.get("config", {})
    assert config.get("cleanup.policy") in {"delete", "compact", "compact,delete"}, config
    if "min.insync.replicas" in config:
        assert config["min.insync.replicas"] <= spec["replicas"], spec


CRD_CHECKS = {"ServiceMonitor": _check_service_monitor, "PrometheusRule": _check_prometheus_rule, "KafkaTopic": _check_kafka_topic}


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: p.relative_to(KUBE).as_posix())
def test_every_manifest_file_validates(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path} holds no resource"
    for doc in docs:
        _validate(doc)


def test_the_validator_rejects_what_it_should() -> None:
    """The strict schema check really looks: an unknown field and a wrong type fail."""
    deployment = _one(_docs(BASE / "worker-deployment.yaml"), "Deployment")
    bad = json.loads(json.dumps(deployment))
    bad["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    bad = json.loads(json.dumps(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_kustomize_renders_the_example_overlay_and_every_resource_validates(rendered: list[dict[str, Any]]) -> None:
    kinds = Counter(d["kind"] for d in rendered)
    assert kinds["Deployment"] == kinds["DaemonSet"] == kinds["Service"] == kinds["Namespace"] == 1, kinds
    assert kinds["ServiceMonitor"] == kinds["PrometheusRule"] == kinds["Secret"] == 1, kinds
    assert kinds["KafkaTopic"] == 12, kinds
    for doc in rendered:
        _validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "inferwatch", doc["metadata"]


def test_kustomize_renders_the_base(rendered_base: list[dict[str, Any]]) -> None:
    for doc in rendered_base:
        _validate(doc)
        assert "namespace" not in doc["metadata"], "the base leaves the namespace to the overlays"


# -- generated files ----------------------------------------------------------------


def test_generated_files_are_current() -> None:
    generate = _generate_module()
    stale = [p.relative_to(ROOT).as_posix() for p in generate.stale()]
    assert stale == [], f"stale: {stale}; run .venv/bin/python deploy/kubernetes/generate.py"


def test_prometheus_rule_carries_every_rule_of_the_rule_files() -> None:
    rule = _one(_docs(BASE / "prometheusrule.yaml"), "PrometheusRule")
    wanted = [g for name in ("recording.yml", "alerts.yml") for g in _docs(ROOT / "deploy" / "prometheus" / "rules" / name)[0]["groups"]]
    assert rule["spec"]["groups"] == wanted


def test_dashboard_configmaps_hold_the_generated_json_for_the_grafana_sidecar() -> None:
    maps = _docs(BASE / "dashboards-configmap.yaml")
    files = sorted((ROOT / "dashboards" / "generated").glob("*.json"))
    assert files and len(maps) == len(files)
    for cm, path in zip(maps, files):
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert list(cm["data"]) == [path.name]
        assert json.loads(cm["data"][path.name]) == json.loads(path.read_text())
        # a ConfigMap holds at most 1 MiB; client-side `kubectl apply` keeps a copy in a 256 KiB annotation
        assert len(yaml.safe_dump(cm).encode()) < 256 * 1024, f"{path.name} too large for one ConfigMap"


def test_kafka_topics_cover_the_settings_topics_and_every_changelog() -> None:
    topics = {d["spec"]["topicName"]: d for d in _docs(BASE / "kafkatopics.yaml")}
    s = Settings()
    for name in (s.inference_topic, s.gpu_topic, s.alerts_topic, s.deadletter_topic, s.control_topic):
        assert name in topics, name
        assert topics[name]["spec"]["config"]["cleanup.policy"] == "delete"
    app = (ROOT / "streams" / "app.py").read_text()
    tables = re.findall(r"app\.Table\(\"(\w+)\"", app)
    global_tables = re.findall(r"app\.GlobalTable\(\"(\w+)\"", app)
    assert tables and global_tables
    assert {t for t in topics if t.endswith("-changelog")} == {f"{s.app_id}-{t}-changelog" for t in tables + global_tables}
    for table in tables + global_tables:
        spec = topics[f"{s.app_id}-{table}-changelog"]["spec"]
        assert spec["config"]["cleanup.policy"] == "compact", table
        if table in global_tables:
            assert spec["partitions"] == 1, table
    # co-partitioning: each table's changelog has the partitions of the topic it follows
    follows = {"model_state": s.inference_topic, "kserve_waiting": s.inference_topic, "host_state": s.gpu_topic, "forwarder_state": s.alerts_topic}
    assert set(follows) == set(tables), "a new table: say which topic its changelog follows"
    for table, topic in follows.items():
        assert topics[f"{s.app_id}-{table}-changelog"]["spec"]["partitions"] == topics[topic]["spec"]["partitions"]
        assert topics[f"{s.app_id}-{table}-changelog"]["metadata"]["labels"]["inferwatch.io/partitions"] == "scaled"


# -- the pieces agree ---------------------------------------------------------------


def _settings_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    return _one(docs, "ConfigMap", "inferwatch-settings")["data"]


@pytest.mark.parametrize("which", ["base", "example"])
def test_settings_configmap_holds_valid_inferwatch_settings(which: str, rendered: list[dict[str, Any]], rendered_base: list[dict[str, Any]]) -> None:
    data = _settings_data(rendered if which == "example" else rendered_base)
    known = {var for var, _, _ in Settings.describe()}
    unknown = {k for k in data if k.startswith("INFERWATCH_")} - known
    assert unknown == set(), f"not settings: {unknown}"
    settings = Settings.from_env(data)  # every value parses
    assert settings.web_host == "0.0.0.0", "the web endpoint must listen on the pod IP for probes and scrapes"
    topics = {d["spec"]["topicName"] for d in _of_kind(rendered if which == "example" else rendered_base, "KafkaTopic")}
    assert {settings.inference_topic, settings.gpu_topic, settings.alerts_topic, settings.deadletter_topic, settings.control_topic} <= topics
    assert {f"{settings.app_id}-{t}-changelog" for t in ("model_state", "kserve_waiting", "host_state", "forwarder_state")} <= topics


def test_worker_probes_ports_and_scaling(rendered: list[dict[str, Any]]) -> None:
    data = _settings_data(rendered)
    deployment = _one(rendered, "Deployment", "inferwatch-worker")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = int(data["INFERWATCH_WEB_PORT"])
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http", port)]
    # liveness: alive and serving (/metrics, whatever the lag); readiness: consuming and caught up (/health)
    assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    assert container["startupProbe"]["httpGet"]["path"] == "/metrics"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["args"][:1] == ["worker"] and "$(TOPIC_PARTITIONS)" in container["args"]
    refs = [e.get("configMapRef", e.get("secretRef"))["name"] for e in container["envFrom"]]
    assert refs[0] == "inferwatch-settings" and refs[1] == _one(rendered, "Secret")["metadata"]["name"]
    # scale by partitions: no more workers than partitions, all partitioned topics alike
    scaled = {d["spec"]["partitions"] for d in _of_kind(rendered, "KafkaTopic")
              if d["metadata"]["labels"].get("inferwatch.io/partitions") == "scaled"}
    assert len(scaled) == 1, f"partitioned topics disagree: {scaled}"
    (partitions,) = scaled
    assert int(data["TOPIC_PARTITIONS"]) == partitions
    assert 1 <= deployment["spec"]["replicas"] <= partitions
    assert "volumeClaimTemplates" not in deployment["spec"] and not any("persistentVolumeClaim" in v for v in pod.get("volumes", []))


def test_service_and_service_monitor_reach_the_workers(rendered: list[dict[str, Any]]) -> None:
    deployment = _one(rendered, "Deployment", "inferwatch-worker")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _one(rendered, "Service", "inferwatch-worker")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["publishNotReadyAddresses"] is True, "lagging (unready) workers must still be scraped"
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    monitor = _one(rendered, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    # the job label the alert rules use: up{job="inferwatch"}
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "inferwatch"
    assert 'job="inferwatch"' in (ROOT / "deploy" / "prometheus" / "rules" / "alerts.yml").read_text()


def test_gpu_collector_runs_on_gpu_nodes_and_names_the_node(rendered: list[dict[str, Any]]) -> None:
    daemonset = _one(rendered, "DaemonSet", "inferwatch-gpu-collector")
    pod = daemonset["spec"]["template"]["spec"]
    assert any("nvidia.com/gpu" in k for k in pod["nodeSelector"]), pod["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" and t["operator"] == "Exists" for t in pod["tolerations"])
    (container,) = pod["containers"]
    assert container["args"][:1] == ["gpu-collect"]
    # inside a pod the hostname is the pod's name: the host label must be the node's
    assert container["args"][container["args"].index("--host") + 1] == "$(NODE_NAME)"
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # monitoring only: it must not take a GPU away from the workloads
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert container["envFrom"][0]["configMapRef"]["name"] == "inferwatch-settings"


def test_example_overlay_selects_for_its_prometheus_and_kafka(rendered: list[dict[str, Any]]) -> None:
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert _one(rendered, kind)["metadata"]["labels"]["release"] == "monitoring"
    assert {d["metadata"]["labels"]["strimzi.io/cluster"] for d in _of_kind(rendered, "KafkaTopic")} == {"prod-kafka"}
    images = {c["image"] for d in rendered if d["kind"] in ("Deployment", "DaemonSet") for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example.com/ml-platform/inferwatch:0.1.0"}
