"""What a model-side signal becomes: an alert now, held a moment, or folded into another.

* Latency and confidence signals are *correlatable*: when a GPU serving the
  model is anomalous they become one ``correlated`` alert.  GPU state may lag
  the model side (a few samples, or a GPU consumer behind the inference one),
  so a correlatable signal with no anomalous GPU yet is held until ``grace``
  seconds of event time have passed on both sides — at most ``max_hold``
  seconds (twice the correlation window) when the GPU side stays behind, e.g. its
  collector is down — before it opens as itself.
* Multivariate drift is for changes no single feature shows: it is held
  ``grace`` seconds and dropped when a per-feature input-drift alert of the same
  model version opens meanwhile (or is open).
* Every other signal opens (or keeps open) its own alert at once.

An incident that opened as itself (its GPUs fine through the grace) and whose GPUs
turn anomalous later *escalates*: when its ``correlated`` alert opens, the plain
alerts it grew from (:meth:`Triage.take_over`) resolve at that moment (their
evidence naming it, ``superseded_by``), and the correlated alert starts when the
first of them did, naming them (``escalated_from``): one incident, one alert
firing at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from streams.core.alerts import AlertTracker, OpenAlert
from streams.core.correlation import CORRELATABLE, is_correlated, serving_states
from streams.core.gpu_monitor import GpuState
from streams.core.model_monitor import MULTIVARIATE
from streams.core.signals import Signal

__all__ = ["Triage"]


def _correlated(signal: Signal, hits: list[GpuState]) -> Signal:
    return dataclasses.replace(
        signal, kind="correlated", severity="critical", feature=None,
        evidence={"model_side": signal.kind, "model_evidence": signal.evidence,
                  "anomalous_gpus": [f"{s.host}/{s.gpu}" for s in hits]},
    )


class Triage:
    """Applies the rules above for one engine (``grace`` and ``window`` in seconds)."""

    def __init__(self, grace: float, window: float) -> None:
        self.grace = grace
        self.window = window
        self.max_hold = max(2.0 * window, grace)

    def context(self, gpus: Mapping[tuple[str, str | None], float], states: Mapping[str, GpuState], host: str | None) -> list[GpuState]:
        """State rows of the GPUs that served the model (on ``host`` when given)."""
        return serving_states(states, [(h, g) for (h, g) in gpus if host is None or h == host])

    def decide(self, signal: Signal, tracker: AlertTracker, pending: dict[str, Signal], context: list[GpuState]) -> Signal | None:
        """The signal to fire now (possibly transformed), or None when held or dropped."""
        if signal.kind in CORRELATABLE:
            hits = is_correlated(context, signal.ts, self.window)
            correlated = _correlated(signal, hits)
            if tracker.is_open(correlated.fingerprint) or hits:
                held = pending.pop(signal.fingerprint, None)  # the incident started at the held signal
                return _correlated(held, hits) if held is not None and hits else correlated
            if tracker.is_open(signal.fingerprint):
                return signal
            pending.setdefault(signal.fingerprint, signal)
            return None
        if signal.feature == MULTIVARIATE:
            if self._feature_alert_open(signal, tracker):
                return None
            if tracker.is_open(signal.fingerprint):
                return signal
            pending.setdefault(signal.fingerprint, signal)
            return None
        return signal

    def on_repeat(self, signal: Signal, tracker: AlertTracker, context: list[GpuState]) -> Signal | None:
        """A crossing its detector held back as a repeat (``signal``): the incident goes on.  It keeps
        the incident's open alert open (the plain one, or the ``correlated`` one it became); an open
        plain alert whose GPUs have turned anomalous escalates (the returned signal, to fire).  Opens
        nothing else (a held signal stays as it was)."""
        if signal.kind in CORRELATABLE:
            if tracker.keep_open(_correlated(signal, []).fingerprint, signal.ts):
                return None
            hits = is_correlated(context, signal.ts, self.window)
            if hits and tracker.is_open(signal.fingerprint):
                return _correlated(signal, hits)
        tracker.keep_open(signal.fingerprint, signal.ts)
        return None

    @staticmethod
    def take_over(opened: OpenAlert, tracker: AlertTracker) -> list[OpenAlert]:
        """Remove from ``tracker`` and return the open plain alerts the ``correlated`` alert just ``opened``
        takes over: those of its model-side kind, model version and host (any host when either names
        none).  ``opened`` then starts when the first of them started; the caller resolves them."""
        correlated = opened.first
        side = correlated.evidence.get("model_side")
        keys = [
            key for key, alert in tracker.open.items()
            if alert.first.kind == side and alert.first.version == correlated.version
            and (alert.first.host is None or correlated.host is None or alert.first.host == correlated.host)
        ]
        taken = [tracker.open.pop(key) for key in keys]
        for plain in taken:
            plain.latest = dataclasses.replace(plain.latest, evidence={**plain.latest.evidence, "superseded_by": correlated.fingerprint})
        if taken:
            start = min(correlated.ts, *(plain.started for plain in taken))
            opened.latest = dataclasses.replace(correlated, evidence={**correlated.evidence, "escalated_from": keys})
            opened.first = dataclasses.replace(opened.latest, ts=start)  # its latest fire stays now: quiet spells count from it
        return taken

    def due(self, now: float, tracker: AlertTracker, pending: dict[str, Signal], context_of: Any) -> list[Signal]:
        """Held signals whose grace has passed, as they should now fire (dropped ones omitted)."""
        ready = []
        for key, signal in list(pending.items()):
            if now - signal.ts < self.grace:
                continue
            if signal.kind in CORRELATABLE:
                context = context_of(signal.host)
                gpu_behind = bool(context) and min(s.ts for s in context) < signal.ts + self.grace
                if gpu_behind and now - signal.ts < self.max_hold:
                    continue
                del pending[key]
                hits = is_correlated(context, signal.ts, self.window)
                ready.append(_correlated(signal, hits) if hits else signal)
                continue
            del pending[key]
            if not self._feature_alert_open(signal, tracker):
                ready.append(signal)
        return ready

    @staticmethod
    def _feature_alert_open(signal: Signal, tracker: AlertTracker) -> bool:
        return any(
            a.first.kind == "input_drift" and a.first.feature != MULTIVARIATE
            and a.first.model == signal.model and a.first.version == signal.version
            for a in tracker.open.values()
        )
