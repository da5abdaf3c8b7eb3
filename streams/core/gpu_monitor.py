"""GPU side: one anomaly detector per GPU of a host, and the shared GPU state rows.

``HostMonitor.process(samples)`` updates each GPU's detector and returns the
``GpuState`` rows to publish (one per GPU: small, so every worker can hold all
of them; each carries its latest sample and a summary of the last ``quiet_after``
seconds, :mod:`~streams.core.gpu_window`), the signals of GPUs that turned
anomalous, and those of crossings a detector held back as repeats (the
incident goes on: they keep its alert open, and the GPU anomalous).  A GPU
alert is held for ``grace`` seconds of event time: if a model incident on the
same host claims it meanwhile, it is reported inside that model's correlated
alert instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from models.anomaly.dcgm import dcgm_observation
from streams.core.detectors import DetectorFactory
from streams.core.gpu_window import GpuWindow
from streams.core.signals import Signal
from streams.records import GpuSample

__all__ = ["GpuState", "HostMonitor", "gpu_key"]

#: DCGM fields copied into the state row (and so into alerts' GPU context).
CONTEXT_FIELDS = {
    "DCGM_FI_DEV_GPU_UTIL": "util_pct",
    "DCGM_FI_DEV_FB_USED": "fb_used_mib",
    "DCGM_FI_DEV_FB_FREE": "fb_free_mib",
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_SM_CLOCK": "sm_clock_mhz",
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": "clock_event_reasons",
    "DCGM_FI_DEV_XID_ERRORS": "last_xid",
}


#: A GPU whose score reaches this share of its threshold is *unusual*: not enough to
#: alert on its own, enough to corroborate a model-side incident already confirmed.
UNUSUAL = 0.6


def gpu_key(host: str, gpu: int | str) -> str:
    """Key of a GPU in the state table."""
    return f"{host}/{gpu}"


class GpuState(msgspec.Struct, kw_only=True):
    """The latest known state of one GPU, shared with every worker."""

    host: str
    gpu: str
    uuid: str | None = None
    ts: float
    fields: dict[str, float] = {}
    score: float = 0.0
    threshold: float = 1.0
    anomalous_since: float | None = None
    last_fired: float | None = None
    last_unusual: float | None = None
    hard_signals: list[str] = []
    window: dict[str, Any] = {}  # the last window's summary (:meth:`GpuWindow.summary`)

    def context(self) -> dict[str, Any]:
        """The row as it appears in an alert's ``gpu_context``: the latest sample, and the window's summary."""
        return {
            "host": self.host, "gpu": self.gpu, "uuid": self.uuid, "ts": self.ts,
            **self.fields, "anomaly_score": round(self.score, 4), "anomalous": self.anomalous_since is not None,
            "hard_signals": self.hard_signals, "window": self.window,
        }


class HostMonitor:
    """Detectors of every GPU on one host."""

    def __init__(self, host: str, factory: DetectorFactory, *, quiet_after: float = 60.0) -> None:
        self.host = host
        self.factory = factory
        self.quiet_after = quiet_after
        self.detectors: dict[str, Any] = {}
        self.states: dict[str, GpuState] = {}
        self.windows: dict[str, GpuWindow] = {}

    def process(self, samples: Sequence[GpuSample]) -> tuple[list[GpuState], list[Signal], list[Signal]]:
        """Update with samples of this host (event order); changed states, new alarms and repeats."""
        signals: list[Signal] = []
        repeats: list[Signal] = []
        touched: dict[str, GpuState] = {}
        for sample in samples:
            gpu = str(sample.gpu)
            detector = self.detectors.get(gpu)
            if detector is None:
                detector = self.detectors[gpu] = self.factory.gpu()
            detector.update(dcgm_observation(sample.fields))
            window = self.windows.get(gpu)
            if window is None:
                window = self.windows[gpu] = GpuWindow(self.quiet_after)
            window.add(sample.ts, sample.fields)
            state = self.states.get(gpu) or GpuState(host=self.host, gpu=gpu, ts=sample.ts)
            state.uuid = sample.uuid or state.uuid
            state.ts = sample.ts
            state.fields = {name: sample.fields[f] for f, name in CONTEXT_FIELDS.items() if f in sample.fields}
            state.score, state.threshold = float(detector.score), float(detector.threshold)
            evidence = detector.evidence()
            state.hard_signals = list(evidence.get("hard_signals", []))
            if state.score >= UNUSUAL * state.threshold:
                state.last_unusual = sample.ts
            if detector.fired:
                state.last_fired = sample.ts
                if state.anomalous_since is None:
                    state.anomalous_since = sample.ts
                signals.append(self._signal(state, sample, evidence))
            elif detector.crossed and state.anomalous_since is not None:
                state.last_fired = sample.ts
                repeats.append(self._signal(state, sample, evidence))
            elif state.anomalous_since is not None and sample.ts - (state.last_fired or sample.ts) >= self.quiet_after:
                state.anomalous_since = None
            self.states[gpu] = touched[gpu] = state
        for gpu, state in touched.items():
            state.window = self.windows[gpu].summary()
        return list(touched.values()), signals, repeats

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("windows", {})  # before window summaries: they start empty
        self.__dict__.update(state)

    def _signal(self, state: GpuState, sample: GpuSample, evidence: dict[str, Any]) -> Signal:
        return Signal(
            kind="gpu_anomaly", ts=sample.ts, score=max(state.score, state.threshold), threshold=state.threshold,
            statistic=",".join(state.hard_signals) or "multivariate", host=self.host, gpu=state.gpu,
            severity="critical" if state.hard_signals else "warning", evidence=evidence,
        )

    def detectors_list(self) -> list[Any]:
        return list(self.detectors.values())
