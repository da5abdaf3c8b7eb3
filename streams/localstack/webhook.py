"""A tiny HTTP receiver that records Alertmanager webhook payloads.

In-process (tests)::

    rec = WebhookRecorder()
    url = rec.start()            # give this URL to Alertmanager
    rec.wait_for(lambda p: ..., timeout=20)
    rec.stop()

Standalone (``make up``): ``python -m streams.localstack.webhook --port 9095
--out alerts.jsonl`` appends one JSON object per POST; :class:`LocalWebhook`
runs that as a managed background process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .process import REPO_ROOT, ManagedProcess, http_ok

Payload = dict[str, Any]


class WebhookRecorder:
    """Threaded HTTP server; every POSTed JSON body is appended to ``received``.

    GET on any path answers 200 with ``{"received": N}`` (a readiness probe).
    Bodies that are not JSON objects are recorded as ``{"_raw": text}``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, jsonl: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.jsonl = jsonl
        self.received: list[Payload] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def record(self, payload: Payload) -> None:
        """Store one payload (and append it to the JSONL file, if any)."""
        with self._cond:
            self.received.append(payload)
            if self.jsonl is not None:
                with self.jsonl.open("a") as f:
                    f.write(json.dumps(payload, separators=(",", ":")) + "\n")
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self.received.clear()

    def wait_for(self, predicate: Callable[[Payload], bool], timeout: float = 30.0) -> Payload:
        """Return the first recorded payload matching ``predicate``; TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for payload in self.received:
                    if predicate(payload):
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no matching webhook payload in {timeout}s; got {len(self.received)}"
                    )
                self._cond.wait(left)

    def start(self) -> str:
        """Bind (port 0 = any free port), serve in a daemon thread, return the URL."""
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
                recorder.record(payload if isinstance(payload, dict) else {"_raw": body})
                self._reply({"ok": True})

            def do_GET(self) -> None:
                self._reply({"received": len(recorder.received)})

            def _reply(self, obj: Payload) -> None:
                data = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="webhook", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        """Start and block until interrupted (standalone use)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class LocalWebhook(ManagedProcess):
    """The recorder as a background process, appending to ``state_dir/alerts.jsonl``."""

    name = "webhook"
    start_timeout = 15.0

    def __init__(self, state_dir: Path, port: int = 9095) -> None:
        super().__init__(state_dir)
        self.port = port

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def jsonl(self) -> Path:
        return self.state_dir / "alerts.jsonl"

    def command(self) -> Sequence[str]:
        return [
            sys.executable, "-m", "streams.localstack.webhook",
            "--port", str(self.port), "--out", str(self.jsonl),
        ]  # fmt: skip

    def env(self) -> dict[str, str] | None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def ports(self) -> Sequence[int]:
        return (self.port,)

    def is_ready(self) -> bool:
        return http_ok(self.address)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.localstack.webhook",
        description="Record Alertmanager webhook POSTs, one JSON object per line.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to append to")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    WebhookRecorder(args.host, args.port, jsonl=args.out).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
