"""Alertmanager (Debian package binary ``prometheus-alertmanager``) for the local stack.

Config is rendered from ``deploy/alertmanager/alertmanager.yml``: every alert is
routed to one webhook receiver, with short group timers. Clustering is off.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

from .process import REPO_ROOT, ManagedProcess, StackError, find_binary, http_ok, seconds

TEMPLATE = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DEFAULT_TMPL = Path("/usr/share/prometheus/alertmanager/default.tmpl")
"""The notification template file shipped by Debian's prometheus-alertmanager."""


def render_alertmanager_config(
    webhook_url: str,
    group_wait: float = 1.0,
    group_interval: float = 1.0,
    template_file: Path = DEFAULT_TMPL,
) -> str:
    """alertmanager.yml sending every alert group to ``webhook_url``."""
    return string.Template(TEMPLATE.read_text()).substitute(
        webhook_url=webhook_url,
        group_wait=seconds(group_wait),
        group_interval=seconds(group_interval),
        template_file=str(template_file),
    )


class LocalAlertmanager(ManagedProcess):
    """Alertmanager on ``127.0.0.1:port`` notifying ``webhook_url``."""

    name = "alertmanager"
    start_timeout = 30.0

    def __init__(
        self,
        state_dir: Path,
        port: int = 9093,
        webhook_url: str = "http://127.0.0.1:9095/",
        group_wait: float = 1.0,
        group_interval: float = 1.0,
        template_file: Path = DEFAULT_TMPL,
    ) -> None:
        super().__init__(state_dir)
        self.port = port
        self.webhook_url = webhook_url
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.template_file = Path(template_file)

    @property
    def address(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (API under ``/api/v2``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "alertmanager.yml"

    def command(self) -> Sequence[str]:
        return [
            find_binary("prometheus-alertmanager"),
            f"--config.file={self.config_file}",
            f"--storage.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]

    def prepare(self) -> None:
        if not self.template_file.exists():
            raise StackError(f"{self.template_file} missing: run deploy/install.sh")
        self.config_file.write_text(
            render_alertmanager_config(
                self.webhook_url, self.group_wait, self.group_interval, self.template_file
            )
        )

    def ports(self) -> Sequence[int]:
        return (self.port,)

    def is_ready(self) -> bool:
        return http_ok(f"{self.address}/-/ready")
