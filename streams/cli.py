"""The ``inferwatch`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from streams.blas import use_one_blas_thread

use_one_blas_thread()  # before numpy is first imported

import click

from streams.control import ACTIONS
from streams.settings import Settings, SettingsError

_SETTINGS_HELP = "\n".join(f"  {var}  (default {default}): {text}" for var, default, text in Settings.describe())
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


class _LazyGroup(click.Group):
    """A group whose ``lazy`` subcommands (name -> "module:attribute") are imported when first used.

    ``inferwatch gpu-collect`` on a GPU node then needs no dashboard libraries.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module, attribute = self._lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


@click.group(
    cls=_LazyGroup,
    lazy={"dashboards": "dashboards.cli:dashboards"},
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Settings come from the environment:\n\n" + _SETTINGS_HELP.replace("\n", "\n\n"),
)
@click.version_option(package_name="inferwatch")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG instead of INFO.")
def main(verbose: bool) -> None:
    """inferwatch: watch ML inference in production from Kafka.

    Reads inference events and GPU samples, detects drift and anomalies, and
    alerts through Kafka and Alertmanager.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


def _settings(**overrides: object) -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _checked_baseline_dir(settings: Settings) -> Settings:
    """``settings``, once its baseline folder (if one is set) is found to be a folder."""
    if settings.baseline_dir and not Path(settings.baseline_dir).is_dir():
        raise click.UsageError(f"INFERWATCH_BASELINE_DIR={settings.baseline_dir!r} is not a folder")
    return settings


@main.command()
@click.option("--bootstrap", help="Kafka bootstrap servers (default: INFERWATCH_KAFKA_BOOTSTRAP).")
@click.option("--partitions", default=1, show_default=True, help="Partitions for topics this worker has to create.")
def worker(bootstrap: str | None, partitions: int) -> None:
    """Run a worker: consume, detect, alert, serve /metrics and /health.

    Scale out by starting more workers with the same INFERWATCH_APP_ID; Kafka
    spreads the topics' partitions (and the detector state with them) across them.
    """
    from streams.worker import run_worker

    run_worker(_checked_baseline_dir(_settings(kafka_bootstrap=bootstrap)), partitions=partitions)


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--speed", default=1.0, show_default=True, help="Pacing factor on the events' own timestamps; 0 = as fast as possible.")
@click.option("--bootstrap", help="Kafka bootstrap servers (default: INFERWATCH_KAFKA_BOOTSTRAP).")
def replay(files: tuple[Path, ...], speed: float, bootstrap: str | None) -> None:
    """Produce JSONL or JSONL.gz files of inference events / GPU samples into Kafka."""
    from streams.replay import read_lines, replay as run_replay

    settings = _settings(kafka_bootstrap=bootstrap)
    total = sum(1 for _ in read_lines(files))
    with click.progressbar(length=total, label=f"replaying at x{speed:g}" if speed else "replaying", show_pos=True) as bar:
        counts = asyncio.run(run_replay(read_lines(files), settings, speed=speed, progress=bar.update))
    click.echo(f"sent {counts['inference']} to {settings.inference_topic}, {counts['gpu']} to {settings.gpu_topic}")


@main.command()
@click.option("--inference", "inference_file", type=_FILE, help="JSONL(.gz) of inference events.")
@click.option("--gpu", "gpu_file", type=_FILE, help="JSONL(.gz) of GPU samples.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Alerts as JSONL.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="SVG of latency with alert spans (default: OUT with .svg).")
def backtest(inference_file: Path | None, gpu_file: Path | None, out: Path, plot: Path | None) -> None:
    """Run the detectors over files in event time, without Kafka; same engine as the worker."""
    import msgspec

    from streams.backtest import read_messages, run
    from streams.plot import latency_svg

    if inference_file is None and gpu_file is None:
        raise click.UsageError("give --inference and/or --gpu")
    result = run(read_messages(inference_file, gpu_file), _checked_baseline_dir(_settings()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in result.alerts))
    plot = plot or out.with_suffix(".svg")
    plot.write_text(latency_svg(result.latency, result.alerts))
    click.echo(f"{result.events} inference events, {result.samples} GPU samples, {sum(result.rejected.values())} bad lines {dict(result.rejected)}")
    click.echo(f"{'status':<9} {'kind':<17} {'model':<16} {'feature/host/gpu':<22} {'starts':>12} {'score':>8}")
    for a in result.alerts:
        where = a.feature or "/".join(x for x in (a.host, a.gpu) if x) or "-"
        click.echo(f"{a.status:<9} {a.kind:<17} {a.model or '-':<16} {where:<22} {a.starts_at:>12.0f} {a.score:>8.3g}")
    click.echo(f"wrote {out} and {plot}")


@main.command()
@click.argument("action", type=click.Choice(ACTIONS))
@click.argument("model")
@click.argument("version", required=False)
@click.option("--bootstrap", help="Kafka bootstrap servers (default: INFERWATCH_KAFKA_BOOTSTRAP).")
def reference(action: str, model: str, version: str | None, bootstrap: str | None) -> None:
    """Reset (keep reference, restart statistics), relearn (new warm-up) or baseline (load from the
    workers' INFERWATCH_BASELINE_DIR again) a model's reference."""
    from streams.control import send_command

    settings = _settings(kafka_bootstrap=bootstrap)
    command = asyncio.run(send_command(settings, action, model, version))
    click.echo(f"sent {action} for {model} {version or '(all versions)'} to {settings.control_topic} (id {command['id']})")


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def baselines(directory: Path | None) -> None:
    """Check a baseline folder (default: INFERWATCH_BASELINE_DIR) as a worker would read it: events, their
    rate (which a daily false-alert budget is first spread at) and features per model version, whether each is
    long enough to be used, and the lines it would skip.

    Exits 1 when it finds no usable baseline or skips lines, 2 when the folder is missing.
    """
    from streams.baselines import MAX_BASELINE_EVENTS, read_baseline
    from streams.core.model_budget import event_rate
    from streams.core.model_monitor import feature_schema

    settings = _settings()
    folder = directory or (Path(settings.baseline_dir) if settings.baseline_dir else None)
    if folder is None:
        raise click.UsageError("give a folder, or set INFERWATCH_BASELINE_DIR")
    try:
        read = read_baseline(folder, settings)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"{read.files} files in {folder}")
    click.echo(f"{'model':<24} {'version':<12} {'events':>8} {'events/s':>9} {'numeric':>8} {'categorical':>12}  used")
    usable = 0
    for (model, version), events in sorted(read.events.items()):
        numeric, categorical, _ = feature_schema(events, settings.max_features)  # as the baseline fixes it
        used = len(events) >= settings.warmup_events
        usable += used
        note = "yes" if used else f"no: under INFERWATCH_WARMUP_EVENTS={settings.warmup_events}"
        note += f" (its first {MAX_BASELINE_EVENTS})" if (model, version) in read.capped else ""
        rate = event_rate(events)  # what a daily false-alert budget is first spread at (then the live rate)
        rate_text = f"{rate:.3g}" if rate is not None else "-"
        click.echo(f"{model:<24} {version:<12} {len(events):>8} {rate_text:>9} {len(numeric):>8} {len(categorical):>12}  {note}")
    if read.rejected:
        click.echo(f"skipped {sum(read.rejected.values())} bad lines or files: {dict(read.rejected)}", err=True)
        for problem in read.problems:
            click.echo(f"  {problem}", err=True)
    if not usable:
        click.echo("no usable baseline", err=True)
    if read.rejected or not usable:
        raise SystemExit(1)


@main.command("gpu-collect")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.0, min_open=True), help="Seconds between samples.")
@click.option("--host", help="Host label (default: this machine's hostname).")
@click.option("--rounds", type=click.IntRange(min=1), help="Stop after this many samples per GPU (default: run until stopped).")
@click.option("--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write the samples as JSON lines to this file ('-': standard output) instead of Kafka, e.g. to check NVML on a node.")
def gpu_collect(interval: float, host: str | None, rounds: int | None, output: Path | None) -> None:
    """Sample this node's GPUs through NVML into the GPU topic (run on GPU nodes)."""
    from streams.gpu_collect import NoGpuError, collect, kafka_sink, lines_sink, load_nvml

    try:
        nvml = load_nvml()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None

    async def run() -> int:
        stop = asyncio.Event()  # SIGTERM (a pod stopping) or Ctrl-C: finish the round, flush, exit 0
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        options: dict[str, Any] = {"interval": interval, "host": host, "rounds": rounds, "stop": stop}
        if output is None:
            async with kafka_sink(_settings()) as send:
                return await collect(nvml, send, **options)
        with click.open_file(str(output), "wb") as stream:
            async with lines_sink(stream) as send:
                return await collect(nvml, send, **options)

    try:
        sent = asyncio.run(run())
    except NoGpuError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sent {sent} samples to {output or 'the GPU topic'}", err=True)


@main.command("gpu-bridge")
@click.option("--scrape", "url", required=True, help="dcgm-exporter metrics URL, e.g. http://node:9400/metrics.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.0, min_open=True), help="Seconds between scrapes.")
@click.option("--host", default="unknown", show_default=True, help="Host label when the exporter sets none.")
def gpu_bridge(url: str, interval: float, host: str) -> None:
    """Scrape a dcgm-exporter and produce its GPU samples into the GPU topic."""
    from streams.gpu_bridge import bridge

    asyncio.run(bridge(url, _settings(), interval=interval, default_host=host))


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rate", default=20.0, show_default=True, help="Inference events per second per model.")
@click.option("--seed", default=0, show_default=True)
def scenario(out_dir: Path, rate: float, seed: int) -> None:
    """Write the built-in scenario as inference.jsonl.gz, gpu.jsonl.gz and incidents.json."""
    from streams.scenario import builtin, write_files

    for path in write_files(builtin(rate=rate, seed=seed), out_dir):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--speed", default=20.0, show_default=True, help="Replay speed of the scenario (event time / wall time).")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".stack"), show_default=True,
              help="Where the local stack keeps its data and logs.")
def demo(speed: float, state_dir: Path) -> None:
    """The main job on a built-in scenario: local stack up, a worker, incidents, alerts live.

    Starts Kafka, Alertmanager (with a webhook recorder) and Prometheus, runs a
    worker, replays a scenario with an input drift, a GPU-contention latency
    incident and a quiet period, prints alerts as they fire and resolve, and ends
    with a summary.
    """
    from streams.demo import run_demo

    sys.exit(run_demo(_settings(), state_dir=state_dir.resolve(), speed=speed))


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


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stack(args: tuple[str, ...]) -> None:
    """Start, stop or inspect the local stack: stack up|down|status [--help]."""
    from streams.localstack.__main__ import main as stack_main

    sys.exit(stack_main(list(args), prog="inferwatch stack"))  # its own --help, and each subcommand's


if __name__ == "__main__":
    main()
