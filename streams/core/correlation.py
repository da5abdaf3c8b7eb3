"""Joining model incidents with GPU state: context rows and the correlation rule.

A model alert carries the state of the GPUs that served the model (those seen
in its events; every GPU of the host when events name only the host).  A
latency or confidence incident is *correlated* when one of those GPUs was
anomalous within ``window`` seconds of it: it is then raised once, as a
``correlated`` alert naming both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from streams.core.gpu_monitor import GpuState, gpu_key

__all__ = ["CORRELATABLE", "HostView", "gpu_context", "is_correlated", "serving_states"]


class HostView(msgspec.Struct, kw_only=True):
    """What the model side tells the GPU side about one host (a global-table row).

    ``seen``: the latest event time of inference events served from the host;
    ``incidents``: open model-side incidents on it, fingerprint -> event time.
    The GPU side waits for ``seen`` to pass a GPU anomaly before deciding that no
    model incident claims it.
    """

    seen: float = 0.0
    incidents: dict[str, float] = {}

#: Model-side kinds that a GPU anomaly can explain.
CORRELATABLE = frozenset({"latency_anomaly", "confidence_drift"})


def serving_states(states: Mapping[str, GpuState], gpus: Iterable[tuple[str, str | None]]) -> list[GpuState]:
    """State rows of the GPUs ``(host, gpu or None)``; ``None`` means every GPU of the host."""
    found: dict[str, GpuState] = {}
    for host, gpu in gpus:
        if gpu is not None:
            state = states.get(gpu_key(host, gpu))
            if state is not None:
                found[gpu_key(host, gpu)] = state
            continue
        prefix = f"{host}/"
        for key, state in states.items():
            if key.startswith(prefix):
                found[key] = state
    return [found[k] for k in sorted(found)]


def gpu_context(states: Iterable[GpuState]) -> list[dict[str, Any]]:
    """The ``gpu_context`` of an alert."""
    return [s.context() for s in states]


def is_correlated(states: Iterable[GpuState], ts: float, window: float) -> list[GpuState]:
    """The GPUs anomalous or unusual within ``window`` seconds of ``ts`` (empty: not correlated)."""
    hits = []
    for state in states:
        marks = (state.last_fired, state.last_unusual)
        recent = any(m is not None and abs(ts - m) <= window for m in marks)
        if state.anomalous_since is not None or recent:
            hits.append(state)
    return hits
