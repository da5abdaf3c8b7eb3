"""The engine: records in, alerts and state changes out; no I/O.

``on_events`` takes a batch of inference events (any models), ``on_samples`` a
batch of GPU samples (any hosts); both return an ``Output`` with the alert
records to publish, the GPU state rows and host incidents to share, and which
model / host snapshots changed.  State is per key (model, host) and moves
through ``snapshot_model`` / ``snapshot_host`` bytes, restored lazily from
``store`` on first use, so a worker resumes where the last owner stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from streams.core.alerts import AlertTracker, make_alert, more_severe
from streams.core.correlation import CORRELATABLE, HostView, gpu_context
from streams.core.detectors import DetectorFactory
from streams.core.gpu_lookup import GpuIndexByUuid
from streams.core.gpu_monitor import GpuState, HostMonitor, gpu_key
from streams.core.model_monitor import VersionMonitor
from streams.core.reference import apply_command, load_baseline
from streams.core.signals import Signal, in_event_order, latency_signals
from streams.core.triage import Triage
from streams.metrics import Metrics
from streams.records import Alert, GpuSample, InferenceEvent
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.baselines import Baselines

__all__ = ["Engine", "ModelState", "Output"]

log = logging.getLogger(__name__)
_MODEL_PREFIX, _HOST_PREFIX = "model:", "host:"
_SNAPSHOT_MAGIC = b"IW1z"  # format tag: zlib-compressed pickle


def _freeze(state: object) -> bytes:
    """State as bytes for a changelog record: pickled, then zlib level 1 (windows of floats shrink ~2x)."""
    return _SNAPSHOT_MAGIC + zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _thaw(data: bytes) -> Any:
    if not data.startswith(_SNAPSHOT_MAGIC):
        raise ValueError("not an inferwatch state snapshot (unknown format tag)")
    return pickle.loads(zlib.decompress(data[len(_SNAPSHOT_MAGIC) :]))
#: Model-side kinds whose alerts carry GPU context and claim the host's GPU anomalies.
CORRELATED_KINDS = CORRELATABLE | {"correlated"}


@dataclass
class ModelState:
    """Everything inferwatch knows about one model (all its versions)."""

    versions: dict[str, VersionMonitor] = field(default_factory=dict)
    latency: dict[tuple[str, str], Any] = field(default_factory=dict)
    gpus: dict[tuple[str, str | None], float] = field(default_factory=dict)
    tracker: AlertTracker = field(default_factory=AlertTracker)
    pending: dict[str, Signal] = field(default_factory=dict)
    last_ts: float = 0.0
    applied_commands: list[str] = field(default_factory=list)


@dataclass
class HostState:
    """GPU detectors of one host, its pending and open GPU alerts."""

    monitor: HostMonitor
    tracker: AlertTracker
    pending: dict[str, Signal] = field(default_factory=dict)
    last_ts: float = 0.0


@dataclass
class Output:
    """What a batch changed."""

    alerts: list[Alert] = field(default_factory=list)
    gpu_states: dict[str, GpuState] = field(default_factory=dict)
    incidents: dict[str, HostView] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)


class Engine:
    """The detection graph of one worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        gpu_states: Mapping[str, GpuState] | None = None,
        incidents: Mapping[str, HostView] | None = None,
        store: Callable[[str], bytes | None] | None = None,
        metrics: Metrics | None = None,
        baselines: Baselines | None = None,
    ) -> None:
        self.settings = settings
        self.factory = DetectorFactory(
            false_alarms_per_million=settings.false_alarms_per_million,
            warmup=settings.warmup_events,
            latency_whiten=settings.latency_whiten,
            latency_floor=settings.latency_floor,
            gpu_warmup=settings.gpu_warmup_samples,
        )
        self.gpu_states: Mapping[str, GpuState] = gpu_states if gpu_states is not None else {}
        self._gpu_index = GpuIndexByUuid(self.gpu_states)  # for events that name their GPU by UUID only
        self.incidents: Mapping[str, HostView] = incidents if incidents is not None else {}
        self._store = store or (lambda key: None)
        self.metrics = metrics
        self.baselines = baselines  # a version first seen takes its reference from its baseline, if any
        self.triage = Triage(settings.correlation_grace_seconds, settings.correlation_window_seconds)
        self.models: dict[str, ModelState] = {}
        self.hosts: dict[str, HostState] = {}
        self._wall: dict[str, tuple[float, float]] = {}  # key -> (wall clock, event time) when last fed

    # -- state ---------------------------------------------------------------
    def model(self, name: str) -> ModelState:
        """The model's state: in memory, else restored from the store, else new."""
        state = self.models.get(name)
        if state is None:
            data = self._store(_MODEL_PREFIX + name)
            state = _thaw(data) if data else ModelState(tracker=AlertTracker(self.settings.resolve_after_seconds))
            self.models[name] = state
            if data and self.metrics is not None:
                self.metrics.state_restored.labels("model").inc()
        return state

    def host(self, name: str) -> HostState:
        state = self.hosts.get(name)
        if state is None:
            data = self._store(_HOST_PREFIX + name)
            state = _thaw(data) if data else HostState(
                HostMonitor(name, self.factory, quiet_after=self.settings.correlation_window_seconds),
                AlertTracker(self.settings.resolve_after_seconds),
            )
            self.hosts[name] = state
            if data and self.metrics is not None:
                self.metrics.state_restored.labels("host").inc()
        return state

    def snapshot_model(self, name: str) -> tuple[str, bytes]:
        """``(store key, bytes)`` of the model's whole state."""
        return _MODEL_PREFIX + name, _freeze(self.models[name])

    def snapshot_host(self, name: str) -> tuple[str, bytes]:
        """``(store key, bytes)`` of the host's whole state."""
        return _HOST_PREFIX + name, _freeze(self.hosts[name])

    def forget(self, keys: Sequence[str]) -> None:
        """Drop in-memory state (partitions revoked); the store keeps it."""
        for key in keys:
            self.models.pop(key, None)
            self.hosts.pop(key, None)
            self._wall.pop(_MODEL_PREFIX + key, None)
            self._wall.pop(_HOST_PREFIX + key, None)

    # -- inference side ------------------------------------------------------------
    def on_events(self, events: Sequence[InferenceEvent]) -> Output:
        """Update every model's detectors with ``events`` (stream order per model)."""
        out = Output()
        self._gpu_index.next_batch()
        by_model: dict[str, list[InferenceEvent]] = defaultdict(list)
        for event in events:
            by_model[event.model].append(event)
        for name, batch in by_model.items():
            self._model_batch(name, batch, out)
            out.models.add(name)
            self._wall[_MODEL_PREFIX + name] = (time.time(), self.models[name].last_ts)
        return out

    def tick(self, wall: float) -> Output:
        """Settle keys that went quiet (held signals, resolutions): their event time advances with the wall clock."""
        out = Output()
        for key, (seen, event_ts) in list(self._wall.items()):
            now = event_ts + (wall - seen)
            name = key.split(":", 1)[1]
            if key.startswith(_MODEL_PREFIX) and name in self.models:
                if self._settle_model(self.models[name], now, out):
                    out.models.add(name)
            elif key.startswith(_HOST_PREFIX) and name in self.hosts:
                if self._settle_host(self.hosts[name], now, out):
                    out.hosts.add(name)
        return out

    def _settle_model(self, state: ModelState, now: float, out: Output) -> bool:
        """Open held signals that are due and resolve quiet alerts at event time ``now``; True if any changed."""
        before = len(out.alerts)
        context_of = lambda host: self.triage.context(state.gpus, self.gpu_states, host)  # noqa: E731
        for signal in self.triage.due(now, state.tracker, state.pending, context_of):
            self._open_model_alert(state, signal, out)
        for alert, ended in state.tracker.tick(now):
            self._resolve(alert, ended, out)
        return len(out.alerts) > before

    def _settle_host(self, state: HostState, now: float, out: Output) -> bool:
        before = len(out.alerts)
        self._release_pending(state, now, out)
        for alert, ended in state.tracker.tick(now, keep=state.pending.keys()):
            self._resolve(alert, ended, out)
        return len(out.alerts) > before

    def _model_batch(self, name: str, events: list[InferenceEvent], out: Output) -> None:
        state = self.model(name)
        by_version: dict[str, list[InferenceEvent]] = defaultdict(list)
        by_host: dict[tuple[str, str], list[InferenceEvent]] = defaultdict(list)
        for event in events:
            by_version[event.version].append(event)
            by_host[(event.version, event.host or "unknown")].append(event)
            if event.host is not None:
                state.gpus[(event.host, self._gpu_of(event))] = event.ts
        if self.metrics is not None:
            self.metrics.observe_events(events, self._gpu_of)
        signals: list[Signal] = []
        for version, batch in by_version.items():
            monitor = state.versions.get(version)
            if monitor is None:
                monitor = state.versions[version] = VersionMonitor(
                    name, version, self.factory, max_features=self.settings.max_features, alerts_per_day=self.settings.false_alerts_per_model_per_day
                )
                if not load_baseline(monitor, self.baselines, self.factory.warmup):
                    log.info("%s: version %s first seen; learning its reference from its first %d events", name, version, self.factory.warmup)
            signals += monitor.process(batch)
            self._export_drift(name, version, monitor)
        repeats: list[Signal] = []
        for (version, host), batch in by_host.items():
            fired, repeated = self._latency(state, name, version, host, batch)
            signals += fired
            repeats += repeated
        state.last_ts = max(state.last_ts, max(e.ts for e in events))
        for (_, host), batch in by_host.items():
            view = self._host_view(host, out)
            view.seen = max(view.seen, batch[-1].ts)
        for signal, repeat in in_event_order(signals, repeats):  # each after what fell due before it
            self._settle_model(state, signal.ts, out)
            context = self.triage.context(state.gpus, self.gpu_states, signal.host)
            if repeat:  # the incident goes on: its open alert stays open (or escalates)
                self._open_model_alert(state, self.triage.on_repeat(signal, state.tracker, context), out)
            else:
                self._open_model_alert(state, self.triage.decide(signal, state.tracker, state.pending, context), out)
        self._settle_model(state, state.last_ts, out)

    def _gpu_of(self, event: InferenceEvent) -> str | None:
        """The index of the GPU an event with a host ran on: its own, else the one its UUID names on
        that host (``None``: neither known)."""
        if event.gpu is not None:
            return str(event.gpu)
        return self._gpu_index.index(event.host, event.gpu_uuid) if event.host and event.gpu_uuid else None

    def _latency(self, state: ModelState, model: str, version: str, host: str, events: list[InferenceEvent]) -> tuple[list[Signal], list[Signal]]:
        """The latency detector of ``version`` on ``host`` learns ``events``: its signals, and its repeats
        (crossings it held back: the incident goes on)."""
        factory = state.versions[version].factory  # the version's budget (with a daily one: as its rate moves)
        detector = state.latency.get((version, host))
        if detector is None:
            detector = state.latency[(version, host)] = factory.latency()
        elif detector.budget != factory.budget:
            detector.rebudget(factory.budget)  # what it learned stays
        fired, repeated = detector.update_crossings(np.array([e.latency_ms for e in events], dtype=float))
        if self.metrics is not None:
            self.metrics.latency_score.labels(model, version, host).set(float(detector.score))
            self.metrics.latency_threshold.labels(model, version, host).set(float(detector.threshold))
        return latency_signals(detector, [e.ts for e in events], fired, repeated, model=model, version=version, host=host)

    def _open_model_alert(self, state: ModelState, signal: Signal | None, out: Output) -> None:
        if signal is None:
            return
        context = self.triage.context(state.gpus, self.gpu_states, signal.host) if signal.kind in CORRELATED_KINDS else []
        opened = state.tracker.fire(signal)
        if opened is None:
            return
        opened.gpu_context = gpu_context(context)
        if signal.kind == "correlated":
            for plain in self.triage.take_over(opened, state.tracker):
                self._resolve(plain, signal.ts, out)  # as the correlated alert opens
        out.alerts.append(make_alert(opened.first, "firing", opened.started, gpu_context=opened.gpu_context, grafana_url=self.settings.grafana_url))
        if signal.kind in CORRELATED_KINDS:  # claims the GPU anomalies of its hosts from now
            for host in {signal.host} if signal.host else {h for h, _ in state.gpus}:
                self._host_view(host, out).incidents[signal.fingerprint] = signal.ts
        self._count(out.alerts[-1])

    def _resolve(self, alert: Any, ended: float, out: Output) -> None:
        signal = dataclasses.replace(alert.latest, severity=alert.first.severity)  # the identity it fired with
        out.alerts.append(make_alert(signal, "resolved", alert.started, ended=ended, gpu_context=alert.gpu_context, grafana_url=self.settings.grafana_url))
        for host in list(self.incidents) + list(out.incidents):
            if signal.fingerprint in self._peek_view(host, out).incidents:
                del self._host_view(host, out).incidents[signal.fingerprint]
        self._count(out.alerts[-1])

    def _peek_view(self, host: str, out: Output) -> HostView:
        return out.incidents.get(host) or self.incidents.get(host) or HostView()

    def _host_view(self, host: str, out: Output) -> HostView:
        """The host's view as changed by this batch (a copy, written back through ``out``)."""
        view = out.incidents.get(host)
        if view is None:
            old = self.incidents.get(host) or HostView()
            view = out.incidents[host] = HostView(seen=old.seen, incidents=dict(old.incidents))
        return view

    def _export_drift(self, model: str, version: str, monitor: VersionMonitor) -> None:
        if self.metrics is None:
            return
        self.metrics.false_alarm_budget.labels(model, version).set(monitor.factory.false_alarms_per_million)
        for kind, feature, score, threshold in monitor.scores():
            label = self.metrics.feature_label(model, version, feature)
            self.metrics.drift_score.labels(model, version, label, kind).set(score)
            self.metrics.drift_threshold.labels(model, version, label, kind).set(threshold)

    def _count(self, alert: Alert) -> None:
        if self.metrics is not None:
            self.metrics.alerts.labels(alert.kind, alert.severity, alert.status).inc()
            self.metrics.alerts_firing.labels(alert.kind, alert.model or "").inc(1 if alert.status == "firing" else -1)

    # -- GPU side -------------------------------------------------------------
    def on_samples(self, samples: Sequence[GpuSample]) -> Output:
        """Update every host's GPU detectors with ``samples`` (stream order per host)."""
        out = Output()
        by_host: dict[str, list[GpuSample]] = defaultdict(list)
        for sample in samples:
            by_host[sample.host].append(sample)
            if self.metrics is not None:
                self.metrics.observe_gpu(sample)
        for name, batch in by_host.items():
            state = self.host(name)
            states, signals, repeats = state.monitor.process(batch)
            state.last_ts = max(state.last_ts, max(s.ts for s in batch))
            for row in states:
                out.gpu_states[gpu_key(row.host, row.gpu)] = row
                if self.metrics is not None:
                    self.metrics.gpu_score.labels(row.host, row.gpu, row.uuid or "").set(row.score)
                    self.metrics.gpu_threshold.labels(row.host, row.gpu, row.uuid or "").set(row.threshold)
            for signal, repeat in in_event_order(signals, repeats):  # each after what fell due before it: any
                self._settle_host(state, signal.ts, out)  # batching, same alerts
                if repeat:  # the incident goes on: its open alert stays open (opens none)
                    state.tracker.keep_open(signal.fingerprint, signal.ts)
                else:
                    self._host_signal(state, signal)
            self._settle_host(state, state.last_ts, out)
            out.hosts.add(name)
            self._wall[_HOST_PREFIX + name] = (time.time(), state.last_ts)
        return out

    @staticmethod
    def _host_signal(state: HostState, signal: Signal) -> None:
        """A GPU fire: keeps its open alert open, or waits out the grace (a more severe fire
        escalates: it waits too, then replaces the open alert, or the less severe pending one)."""
        key = signal.fingerprint
        open_alert = state.tracker.open.get(key)
        if open_alert is not None and not more_severe(signal, open_alert.first):
            state.tracker.fire(signal)
            return
        pending = state.pending.get(key)
        if pending is None or more_severe(signal, pending):
            state.pending[key] = signal

    def _release_pending(self, state: HostState, now: float, out: Output) -> None:
        """Publish GPU alerts whose grace has passed, unless a model incident on the host claimed them."""
        for key, signal in list(state.pending.items()):
            waited = now - signal.ts
            view = self.incidents.get(state.monitor.host)
            model_behind = view is not None and view.seen < signal.ts + self.settings.gpu_grace_seconds
            if waited < self.settings.gpu_grace_seconds or (model_behind and waited < self.triage.max_hold):
                continue
            del state.pending[key]
            claimed = view.incidents if view is not None else {}
            if any(abs(signal.ts - ts) <= self.settings.resolve_after_seconds for ts in claimed.values()):
                log.info("GPU anomaly %s/%s reported inside a model incident", signal.host, signal.gpu)
                continue
            escalated = state.tracker.escalate(signal)
            if escalated is not None:
                self._resolve(escalated, signal.ts, out)
            opened = state.tracker.fire(signal)
            if opened is not None:
                row = self.gpu_states.get(gpu_key(signal.host or "", signal.gpu or ""))
                opened.gpu_context = gpu_context([row] if row else [])
                out.alerts.append(make_alert(signal, "firing", signal.ts, gpu_context=opened.gpu_context, grafana_url=self.settings.grafana_url))
                self._count(out.alerts[-1])

    # -- control --------------------------------------------------------------
    def command(self, command_id: str, action: str, model: str, version: str | None) -> str | None:
        """Apply a reference command once (:func:`~streams.core.reference.apply_command`); what was
        done, or None when this command was applied before."""
        return apply_command(self.model(model), self.factory, self.baselines, command_id, action, model, version)
