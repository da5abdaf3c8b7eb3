"""Prometheus (Debian package binary ``prometheus``) for the local stack.

Config is rendered from ``deploy/prometheus/prometheus.yml``: one scrape job
``inferwatch`` with static targets. Started with ``--web.enable-lifecycle`` so
``set_targets()`` can rewrite the config and hot-reload it.
"""

from __future__ import annotations

import json
import string
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .process import REPO_ROOT, ManagedProcess, StackError, find_binary, http_ok, seconds

TEMPLATE = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"
#: The project's recording and alerting rules, loaded by default.
DEFAULT_RULE_FILES = (RULES_DIR / "recording.yml", RULES_DIR / "alerts.yml")


def render_prometheus_config(
    scrape_targets: Sequence[str], scrape_interval: float = 2.0, rule_files: Sequence[Path] = ()
) -> str:
    """prometheus.yml scraping ``scrape_targets`` (``host:port``) every ``scrape_interval`` s,
    loading ``rule_files``."""
    return string.Template(TEMPLATE.read_text()).substitute(
        scrape_interval=seconds(scrape_interval),
        scrape_timeout=seconds(scrape_interval),
        targets=json.dumps(list(scrape_targets)),
        rule_files=json.dumps([str(p) for p in rule_files]),
    )


class LocalPrometheus(ManagedProcess):
    """Prometheus on ``127.0.0.1:port`` scraping ``scrape_targets``."""

    name = "prometheus"
    start_timeout = 30.0

    def __init__(
        self,
        state_dir: Path,
        port: int = 9090,
        scrape_targets: Sequence[str] = ("127.0.0.1:6066",),
        scrape_interval: float = 2.0,
        rule_files: Sequence[Path] = DEFAULT_RULE_FILES,
    ) -> None:
        super().__init__(state_dir)
        self.port = port
        self.scrape_targets = list(scrape_targets)
        self.scrape_interval = scrape_interval
        self.rule_files = [p for p in rule_files if Path(p).is_file()]

    @property
    def address(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "prometheus.yml"

    def command(self) -> Sequence[str]:
        return [
            find_binary("prometheus"),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]

    def prepare(self) -> None:
        self.config_file.write_text(render_prometheus_config(self.scrape_targets, self.scrape_interval, self.rule_files))

    def ports(self) -> Sequence[int]:
        return (self.port,)

    def is_ready(self) -> bool:
        return http_ok(f"{self.address}/-/ready")

    def set_targets(self, scrape_targets: Sequence[str]) -> None:
        """Replace the ``inferwatch`` job's targets and hot-reload the running server.

        Prometheus throttles target discovery to one update per 5 s, so a new target's
        first sample shows up about 5-6 s later (the same holds right after start).
        """
        self.scrape_targets = list(scrape_targets)
        self.prepare()
        req = urllib.request.Request(f"{self.address}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                if resp.status != 200:
                    raise StackError(f"prometheus reload answered {resp.status}")
        except OSError as exc:
            raise StackError(f"prometheus reload failed: {exc}") from exc
