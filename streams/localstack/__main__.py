"""``python -m streams.localstack {up,down,status}``: run the local stack by hand.

``up`` records the ports it used in ``STATE_DIR/stack.json``: ``status`` and
``down`` need no flags, and a later ``up`` keeps them unless told otherwise.
Exit codes: 0 ok; 1 a service is down or failed to start; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .alertmanager import LocalAlertmanager
from .kafka import LocalKafka
from .process import REPO_ROOT, ManagedProcess, StackError, Status
from .prometheus import LocalPrometheus
from .webhook import LocalWebhook

SERVICES = ("kafka", "webhook", "alertmanager", "prometheus")
DEFAULTS: dict[str, Any] = {
    "kafka_port": 9092,
    "controller_port": 19093,
    "alertmanager_port": 9093,
    "webhook_port": 9095,
    "prometheus_port": 9090,
    "scrape_target": ["127.0.0.1:6066"],
    "scrape_interval": 2.0,
}


def build(state_dir: Path, cfg: dict[str, Any]) -> dict[str, ManagedProcess]:
    """The stack's launchers, in start order, from a port/target config."""
    webhook = LocalWebhook(state_dir / "webhook", cfg["webhook_port"])
    return {
        "kafka": LocalKafka(state_dir / "kafka", cfg["kafka_port"], cfg["controller_port"]),
        "webhook": webhook,
        "alertmanager": LocalAlertmanager(
            state_dir / "alertmanager", cfg["alertmanager_port"], webhook.address
        ),
        "prometheus": LocalPrometheus(
            state_dir / "prometheus",
            cfg["prometheus_port"],
            cfg["scrape_target"],
            cfg["scrape_interval"],
        ),
    }


def _saved(state_dir: Path) -> dict[str, Any]:
    try:
        return {**DEFAULTS, **json.loads((state_dir / "stack.json").read_text())}
    except (OSError, ValueError):
        return dict(DEFAULTS)


def parse_args(argv: Sequence[str] | None, prog: str = "python -m streams.localstack") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Start, stop or inspect the local Kafka + Alertmanager (+ webhook "
        "recorder) + Prometheus stack. Jars and binaries come from deploy/install.sh.",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=REPO_ROOT / ".stack",
        help="where configs, data, pid and log files live (default: %(default)s)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the services (idempotent; restarts crashed ones)")
    up.add_argument("services", nargs="*", choices=[[], *SERVICES], metavar="SERVICE",
                    help=f"subset to start, of {', '.join(SERVICES)} (default: all)")  # fmt: skip
    flags = {
        "kafka_port": "Kafka PLAINTEXT listener",
        "controller_port": "Kafka KRaft controller listener",
        "alertmanager_port": "Alertmanager API",
        "webhook_port": "webhook recorder Alertmanager notifies (writes alerts.jsonl)",
        "prometheus_port": "Prometheus API",
    }
    for key, what in flags.items():
        up.add_argument(f"--{key.replace('_', '-')}", type=int, metavar="PORT",
                        help=f"{what} (default: {DEFAULTS[key]})")  # fmt: skip
    up.add_argument("--scrape-target", action="append", metavar="HOST:PORT",
                    help="metrics endpoint Prometheus scrapes; repeatable "
                    "(default: 127.0.0.1:6066, the inferwatch worker)")  # fmt: skip
    up.add_argument("--scrape-interval", type=float, metavar="SECONDS",
                    help=f"Prometheus scrape interval (default: {DEFAULTS['scrape_interval']})")
    up.epilog = "Flags not given keep the values of the last `up` (STATE_DIR/stack.json)."
    down = sub.add_parser("down", help="stop the services (SIGTERM, then SIGKILL)")
    down.add_argument("services", nargs="*", choices=[[], *SERVICES], metavar="SERVICE")
    sub.add_parser("status", help="show running / crashed / stopped; exit 1 unless all run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, prog: str = "python -m streams.localstack") -> int:
    args = parse_args(argv, prog)
    state_dir: Path = args.state_dir.resolve()
    if args.cmd == "up":
        cfg = _saved(state_dir)
        cfg.update({k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None})
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "stack.json").write_text(json.dumps(cfg, indent=2))
        stack = build(state_dir, cfg)
        for name in args.services or SERVICES:
            proc = stack[name]
            try:
                print(f"{name:<13} {proc.start():<28} log {proc.log_file}", flush=True)
            except StackError as exc:
                print(f"{name}: FAILED: {exc}", file=sys.stderr)
                return 1
        return 0
    stack = build(state_dir, _saved(state_dir))
    if args.cmd == "down":
        for name in reversed(args.services or SERVICES):
            was = stack[name].status()
            stack[name].stop()
            said = {Status.RUNNING: "stopped", Status.CRASHED: "was crashed; pid file cleared"}
            print(f"{name:<13} {said.get(was, 'not running')}")
        return 0
    ok = True
    for name, proc in stack.items():
        status = proc.status()
        note = ""
        if status is Status.RUNNING and not proc.is_ready():
            note = " (not answering)"
        elif status is Status.CRASHED:
            note = f" (pid {proc.pid()} gone; see {proc.log_file})"
        ok = ok and status is Status.RUNNING and not note
        print(f"{name:<13} {status.value:<8} {proc.address}{note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
