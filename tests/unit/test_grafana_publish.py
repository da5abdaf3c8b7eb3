"""``inferwatch dashboards publish`` against a recorded Grafana HTTP API contract.

A stdlib HTTP server in a thread plays Grafana: it records every request and
answers like Grafana's folder and dashboard API (or with an error status).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from dashboards.build import build_all
from dashboards.cli import dashboards as dashboards_cli
from dashboards.publish import PublishError, connect, folder_uid, publish, with_datasource
from streams.localstack import free_port


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    """Grafana's ``/api/folders`` and ``/api/dashboards/db``, or a fixed error status."""

    folders: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # "METHOD /path" -> status
    requests: list[Recorded] = field(default_factory=list)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        key = f"{method} {path.split('?')[0]}"
        if key in self.fail:
            status = self.fail[key]
            return status, {"message": {401: "Unauthorized", 403: "Permission denied", 404: "Not found"}.get(status, "x")}
        if key == "GET /api/folders":
            return 200, self.folders
        if key == "POST /api/folders":
            if not isinstance(body, dict) or not body.get("title"):
                return 400, {"message": "title required"}
            folder = {"id": len(self.folders) + 1, "uid": body.get("uid") or "generated", "title": body["title"]}
            self.folders.append(folder)
            return 200, folder
        if key == "POST /api/dashboards/db":
            dashboard = body.get("dashboard") if isinstance(body, dict) else None
            if not isinstance(dashboard, dict) or not dashboard.get("uid"):
                return 400, {"message": "dashboard with uid required"}
            if body.get("folderUid") not in {f["uid"] for f in self.folders}:
                return 400, {"message": "folder not found"}
            existing = self.dashboards.get(dashboard["uid"])
            if existing is not None and not body.get("overwrite"):
                return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
            version = (existing or {}).get("version", 0) + 1
            self.dashboards[dashboard["uid"]] = {"version": version, "dashboard": dashboard, "folderUid": body["folderUid"]}
            return 200, {"id": len(self.dashboards), "uid": dashboard["uid"], "status": "success", "version": version,
                         "url": f"/d/{dashboard['uid']}/x", "slug": "x"}
        return 404, {"message": "Not found"}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, answer = fake.handle(self.command, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(dashboards_cli, ["publish", *args], catch_exceptions=False)


def test_publish_creates_folder_and_upserts_every_dashboard(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    result = _cli("--url", url, "--token", "glsa_secret", "--folder", "ML Monitoring", "--datasource-uid", "prom-1")
    assert result.exit_code == 0, result.output
    calls = [(r.method, r.path.split("?")[0]) for r in fake.requests]
    assert calls[:2] == [("GET", "/api/folders"), ("POST", "/api/folders")]
    assert calls[2:] == [("POST", "/api/dashboards/db")] * 3
    assert all(r.headers["authorization"] == "Bearer glsa_secret" for r in fake.requests)
    assert fake.requests[1].body == {"title": "ML Monitoring", "uid": "ml-monitoring"}
    for request in fake.requests[2:]:
        assert request.headers["content-type"].startswith("application/json")
        body = request.body
        assert body["folderUid"] == "ml-monitoring" and body["overwrite"] is True
        assert "id" not in body["dashboard"]
        datasource = next(v for v in body["dashboard"]["templating"]["list"] if v["type"] == "datasource")
        assert datasource["current"]["value"] == "prom-1"
    assert set(fake.dashboards) == {"inferwatch-model", "inferwatch-drift", "inferwatch-gpu"}
    assert "published inferwatch-model" in result.output


def test_publish_again_reuses_folder_and_overwrites(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.folders.append({"id": 7, "uid": "existing-uid", "title": "inferwatch"})
    assert _cli("--url", url, "--user", "admin", "--password", "pw").exit_code == 0
    assert _cli("--url", url, "--user", "admin", "--password", "pw").exit_code == 0
    assert not [r for r in fake.requests if (r.method, r.path) == ("POST", "/api/folders")]
    expected = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert all(r.headers["authorization"] == expected for r in fake.requests)
    assert {d["folderUid"] for d in fake.dashboards.values()} == {"existing-uid"}
    assert {d["version"] for d in fake.dashboards.values()} == {2}


def test_publish_api_returns_what_grafana_stored(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    done = publish(connect(url, token="t"), build_all(), folder="inferwatch", datasource_uid=None)
    assert [p.uid for p in done] == ["inferwatch-model", "inferwatch-drift", "inferwatch-gpu"]
    assert all(p.version == 1 and p.url.startswith("/d/") for p in done)
    stored = fake.dashboards["inferwatch-gpu"]["dashboard"]
    assert stored["panels"] == build_all()["inferwatch-gpu.json"]["panels"]


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        ({"GET /api/folders": 401}, "401 Unauthorized to GET /api/folders: check --token or --user/--password"),
        ({"POST /api/folders": 403}, "403 Forbidden to POST /api/folders: the token or user needs the Editor role"),
        ({"POST /api/dashboards/db": 403}, "403 Forbidden to POST /api/dashboards/db (inferwatch-model.json)"),
        ({"GET /api/folders": 404}, "404 Not Found to GET /api/folders: is --url the Grafana base URL?"),
    ],
)
def test_publish_errors_are_one_clear_line(grafana: tuple[FakeGrafana, str], fail: dict[str, int], expected: str) -> None:
    fake, url = grafana
    fake.fail.update(fail)
    result = _cli("--url", url, "--token", "t")
    assert result.exit_code == 1
    assert result.output.startswith("Error: Grafana at ")
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_connection_refused_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = _cli("--url", url, "--token", "t", "--timeout", "3")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: cannot reach Grafana at {url} (GET /api/folders): connection refused"


def test_token_and_user_together_is_a_usage_error() -> None:
    result = CliRunner().invoke(dashboards_cli, ["publish", "--url", "http://x", "--token", "t", "--user", "u"])
    assert result.exit_code == 2
    assert "either --token or --user" in result.output


def test_publish_error_type_for_library_use(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.fail["GET /api/folders"] = 401
    with pytest.raises(PublishError, match="401"):
        publish(connect(url, token="bad"), build_all())


def test_helpers() -> None:
    assert folder_uid("ML Monitoring / Prod") == "ml-monitoring-prod"
    assert folder_uid("***") == "inferwatch"
    dashboard = build_all()["inferwatch-model.json"]
    changed = with_datasource(dashboard, "abc")
    assert changed["templating"]["list"][0]["current"]["value"] == "abc"
    assert dashboard["templating"]["list"][0]["current"]["value"] == "inferwatch-prometheus"
