"""``inferwatch backtest``: the engine over files, in event time, without Kafka.

Messages from the inference and GPU files are merged by event time and fed to
the same ``Engine`` the worker runs, in batches of consecutive messages of one
topic (as the agents would see them); the GPU state and incidents live in
dicts instead of global tables.  Bad lines are counted by reason, as dead
letters would be.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from streams.baselines import Baselines
from streams.core import Engine
from streams.core.correlation import HostView
from streams.core.engine import Output
from streams.decoding import GpuDecoder, InferenceDecoder
from streams.intake import Intake
from streams.line_files import numbered_lines
from streams.records import Alert, GpuSample, InferenceEvent
from streams.settings import Settings
from streams.timestamps import to_epoch_seconds

__all__ = ["BacktestResult", "read_messages", "run"]

_ANY = msgspec.json.Decoder()


@dataclass
class BacktestResult:
    """Alerts raised, records seen, bad lines by reason, and per-second signal series."""

    alerts: list[Alert] = field(default_factory=list)
    events: int = 0
    samples: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def _lines(path: Path, topic: str) -> Iterator[tuple[float, int, str, bytes]]:
    for n, line in numbered_lines(path):
        yield _event_time(line), n, topic, line


def _event_time(line: bytes) -> float:
    """Event time of a line, for ordering only: bad lines sort first and the decoder reports them."""
    try:
        obj = _ANY.decode(line)
        return to_epoch_seconds(obj.get("ts", obj.get("timestamp")))
    except (msgspec.DecodeError, UnicodeDecodeError, AttributeError, TypeError, ValueError):
        return float("-inf")


def read_messages(inference: Path | None, gpu: Path | None) -> Iterator[tuple[str, bytes]]:
    """``(topic, line)`` from both files, merged by event time (stable within a file)."""
    streams = [_lines(p, t) for p, t in ((inference, "inference"), (gpu, "gpu")) if p is not None]
    for _, _, topic, line in heapq.merge(*streams, key=lambda item: (item[0], item[2] == "inference", item[1])):
        yield topic, line


def run(messages: Iterable[tuple[str, bytes]], settings: Settings, *, batch_size: int = 500) -> BacktestResult:
    """Feed messages through the engine; returns the alerts and what was seen."""
    gpu_states: dict[str, Any] = {}
    incidents: dict[str, HostView] = {}
    engine = Engine(settings, gpu_states=gpu_states, incidents=incidents, baselines=Baselines(settings.baseline_dir, settings))
    intakes = {"inference": Intake(InferenceDecoder(settings)), "gpu": Intake(GpuDecoder(settings))}
    result = BacktestResult()
    batch: list[Any] = []
    batch_topic = ""

    def flush() -> None:
        if not batch:
            return
        if batch_topic == "inference":
            out = engine.on_events(batch)
            result.events += len(batch)
            _series(result, batch)
        else:
            out = engine.on_samples(batch)
            result.samples += len(batch)
        _apply(out, gpu_states, incidents, result)
        batch.clear()

    for offset, (topic, raw) in enumerate(messages):
        if topic != batch_topic or len(batch) >= batch_size:
            flush()
            batch_topic = topic
        got = intakes[topic].process(topic=topic, partition=0, offset=offset, key=None, value=raw)
        batch.extend(got.records)
    flush()
    for intake in intakes.values():
        result.rejected.update(intake.rejected)
    return result


def _apply(out: Output, gpu_states: dict[str, Any], incidents: dict[str, HostView], result: BacktestResult) -> None:
    gpu_states.update(out.gpu_states)
    incidents.update(out.incidents)
    result.alerts.extend(out.alerts)


def _series(result: BacktestResult, events: list[InferenceEvent | GpuSample]) -> None:
    """Median latency per model per event-time second, for the plot."""
    per: dict[tuple[str, int], list[float]] = {}
    for e in events:
        per.setdefault((e.model, int(e.ts)), []).append(e.latency_ms)  # type: ignore[union-attr]
    for (model, second), values in per.items():
        values.sort()
        result.latency.setdefault(model, []).append((float(second), values[len(values) // 2]))
