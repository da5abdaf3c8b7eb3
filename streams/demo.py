"""``inferwatch demo``: the whole service on the built-in scenario, alerts shown live.

Starts the local stack (Kafka, Alertmanager with a webhook recorder,
Prometheus scraping the worker), runs a worker in a subprocess on topics named
for this run, replays the built-in scenario, prints every alert from the
alerts topic as it fires and resolves, and ends with a summary: incidents
against alerts, dead letters, what Alertmanager holds and where to look.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import click
import msgspec
from aiokafka import AIOKafkaConsumer

from streams.localstack import StackError
from streams.localstack.__main__ import DEFAULTS, SERVICES, build
from streams.records import Alert
from streams.replay import replay
from streams.scenario import builtin
from streams.settings import Settings
from streams.worker import WorkerFailed, spawn_worker, stop_worker, wait_healthy

__all__ = ["run_demo"]


def _start_stack(state_dir: Path) -> dict[str, str]:
    stack = build(state_dir, dict(DEFAULTS))
    addresses = {}
    for name in SERVICES:
        try:
            addresses[name] = stack[name].start()
        except StackError as exc:
            raise click.ClickException(f"{exc} (another stack running? `inferwatch stack status --state-dir ...`)") from None
        click.echo(f"  {name:<13} {addresses[name]}")
    return addresses


async def _watch(settings: Settings, expected_resolutions: int, deadline: float, replaying: asyncio.Task[dict[str, int]]) -> list[Alert]:
    consumer = AIOKafkaConsumer(settings.alerts_topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    alerts: list[Alert] = []
    try:
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for m in records:
                    a = msgspec.json.decode(m.value, type=Alert)
                    alerts.append(a)
                    where = a.feature or "/".join(x for x in (a.host, a.gpu) if x) or "-"
                    colour = "red" if a.status == "firing" else "green"
                    click.secho(f"  {a.status.upper():<9} {a.kind:<16} {a.model or '-':<15} {where:<14} {a.summary}", fg=colour)
            resolved = sum(1 for a in alerts if a.status == "resolved")
            if replaying.done() and resolved >= expected_resolutions:
                break
    finally:
        await consumer.stop()
    return alerts


def run_demo(settings: Settings, *, state_dir: Path, speed: float = 20.0, timeout: float = 600.0) -> int:
    """Run the demo; returns the process exit code (0 when every incident alerted once and resolved)."""
    click.secho("starting the local stack", bold=True)
    addresses = _start_stack(state_dir)
    run = f"demo-{int(time.time())}"
    settings = dataclasses.replace(
        settings,
        kafka_bootstrap=addresses["kafka"],
        alertmanager_url=addresses["alertmanager"],
        app_id=run,
        inference_topic=f"{run}.inference.events",
        gpu_topic=f"{run}.gpu.metrics",
        alerts_topic=f"{run}.alerts",
        deadletter_topic=f"{run}.deadletter",
        control_topic=f"{run}.control",
        web_port=int(DEFAULTS["scrape_target"][0].rsplit(":", 1)[1]),
        resolve_after_seconds=30.0,
    )
    scenario = builtin(rate=20.0)
    click.secho(f"starting a worker (topics {run}.*, metrics on :{settings.web_port})", bold=True)
    log_path = state_dir / f"{run}-worker.log"
    worker = spawn_worker(settings, log_path)
    try:
        try:
            wait_healthy(settings.web_port, worker, log_path)
        except WorkerFailed as exc:
            raise click.ClickException(str(exc)) from None
        click.secho(f"replaying {scenario.seconds}s of scenario at x{speed:g}: {[type(i).__name__ for i in scenario.incidents]}", bold=True)
        alerts = asyncio.run(_replay_and_watch(settings, scenario, speed, timeout))
    finally:
        stop_worker(worker)
    time.sleep(3.0)  # Alertmanager's group interval: let the last notifications reach the webhook
    return _summary(settings, scenario, alerts, addresses, log_path, state_dir)


async def _replay_and_watch(settings: Settings, scenario: object, speed: float, timeout: float) -> list[Alert]:
    lines = (m.value for m in scenario.messages())  # type: ignore[attr-defined]
    replaying = asyncio.create_task(replay(lines, settings, speed=speed))
    expected = len(scenario.incidents)  # type: ignore[attr-defined]
    alerts = await _watch(settings, expected, time.monotonic() + timeout, replaying)
    await replaying
    return alerts


def _webhook_notifications(state_dir: Path, fingerprints: set[str]) -> int:
    """Webhook deliveries (firing or resolved) that carry one of ``fingerprints``."""
    path = state_dir / "webhook" / "alerts.jsonl"
    if not path.exists():
        return 0
    count = 0
    for line in path.read_text().splitlines():
        alerts = json.loads(line).get("alerts", [])
        count += any(a.get("annotations", {}).get("fingerprint") in fingerprints for a in alerts)
    return count


def _summary(settings: Settings, scenario: object, alerts: list[Alert], addresses: dict[str, str], log_path: Path, state_dir: Path) -> int:
    click.secho("\nsummary", bold=True)
    firing = [a for a in alerts if a.status == "firing"]
    resolved = {a.fingerprint for a in alerts if a.status == "resolved"}
    ok = True
    for incident in scenario.incidents:  # type: ignore[attr-defined]
        start = scenario.at(incident.start)  # type: ignore[attr-defined]
        hits = [a for a in firing if a.kind == incident.kind and start - 5 <= a.starts_at <= scenario.at(incident.end)]  # type: ignore[attr-defined]
        delay = f"{hits[0].starts_at - start:.1f}s after onset" if hits else "MISSED"
        state = "resolved" if hits and all(a.fingerprint in resolved for a in hits) else "not resolved"
        ok = ok and len(hits) == 1 and state == "resolved"
        click.echo(f"  {type(incident).__name__:<14} {incident.kind:<14} alerts {len(hits)}  {delay}, {state}")
    quiet = [a for a in firing if a.starts_at > scenario.at(max(i.end for i in scenario.incidents) + 5)]  # type: ignore[attr-defined]
    click.echo(f"  quiet period   alerts {len(quiet)}")
    notified = _webhook_notifications(state_dir, {a.fingerprint for a in firing})
    click.echo(f"  Alertmanager notified the webhook {notified} times for this run's alerts ({state_dir / 'webhook' / 'alerts.jsonl'})")
    click.echo(f"  Prometheus: {addresses['prometheus']}  worker log: {log_path}")
    click.echo("  the stack keeps running: `make down` (or `inferwatch stack down`) stops it")
    return 0 if ok and not quiet else 1
