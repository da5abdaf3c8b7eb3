"""The ``inferwatch`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import click

from streams.settings import Settings, SettingsError

_SETTINGS_HELP = "\n".join(f"  {var}  (default {default}): {text}" for var, default, text in Settings.describe())


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Settings come from the environment:\n\n" + _SETTINGS_HELP.replace("\n", "\n\n"),
)
@click.version_option(package_name="inferwatch")
def main() -> None:
    """inferwatch: watch ML inference in production from Kafka.

    Reads inference events and GPU samples, detects drift and anomalies, and
    alerts through Kafka and Alertmanager.
    """


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
@click.option("--bootstrap", help="Use this Kafka instead of starting the local one (host:port).")
@click.option("--seconds", default=30, show_default=True, help="Event-time length of the scenario.")
@click.option("--rate", default=20.0, show_default=True, help="Inference events per second per model.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".stack"), show_default=True,
              help="Where the local stack keeps its data and logs.")
def demo(bootstrap: str | None, seconds: int, rate: float, state_dir: Path) -> None:
    """Run the built-in scenario through a real Kafka and show it decoded.

    Starts the local Kafka (KRaft) unless --bootstrap is given, produces the
    scenario (two models, two GPU hosts, a few malformed messages), consumes it
    back and prints what arrived and what went to the dead-letter topic.
    """
    from streams.demo import print_summary, run_demo, start_local_kafka

    settings = _settings()
    address = bootstrap or start_local_kafka(state_dir.resolve())
    settings = dataclasses.replace(settings, kafka_bootstrap=address)
    summary = asyncio.run(run_demo(settings, seconds=seconds, rate=rate))
    print_summary(summary, settings)
    if summary.consumed != summary.produced:
        sys.exit(1)


@main.command()
@click.option("--check", is_flag=True, help="Only check that the committed files are current (exit 1 if not).")
def schemas(check: bool) -> None:
    """Write the producers' JSON Schema files (streams/schemas/) from the records."""
    from streams.schemas import SCHEMA_DIR, stale_schemas, write_schemas

    if check:
        stale = stale_schemas()
        for name in stale:
            click.echo(f"stale: {SCHEMA_DIR / name}", err=True)
        sys.exit(1 if stale else 0)
    for path in write_schemas():
        click.echo(f"wrote {path}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stack(args: tuple[str, ...]) -> None:
    """Start, stop or inspect the local stack: stack up|down|status [--help]."""
    from streams.localstack.__main__ import main as stack_main

    sys.exit(stack_main(list(args)))
