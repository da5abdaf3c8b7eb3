"""A detector's verdict on one key at one moment, and the identity of an alert."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Signal", "fingerprint", "in_event_order", "latency_signals"]


def fingerprint(labels: dict[str, str]) -> str:
    """Stable 16-hex-digit fingerprint of an alert's identity labels."""
    text = "\x1f".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Signal:
    """A detector fired (or reports its score) for one identity at event time ``ts``."""

    kind: str
    ts: float
    score: float
    threshold: float
    statistic: str = ""
    model: str | None = None
    version: str | None = None
    feature: str | None = None
    host: str | None = None
    gpu: str | None = None
    severity: str = "warning"
    evidence: dict[str, Any] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        """Identity labels: kind plus the keys that apply (bounded by construction)."""
        out = {"kind": self.kind}
        for name in ("model", "version", "feature", "host", "gpu"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels())


def latency_signals(detector: Any, times: list[float], fired: Any, repeated: Any, **identity: str) -> tuple[list[Signal], list[Signal]]:
    """``latency_anomaly`` signals of a latency detector that just learned events at ``times``: those
    of the events that ``fired``, and of those ``repeated`` (crossings it held back as repeats)."""
    if len(fired) == 0 and len(repeated) == 0:
        return [], []
    evidence = detector.evidence()
    score, threshold = float(detector.score), float(detector.threshold)
    signals = [
        Signal(kind="latency_anomaly", ts=times[i], score=max(score, threshold), threshold=threshold,
               statistic=str(evidence.get("kind", "latency")), evidence=evidence, **identity)
        for i in (*fired, *repeated)
    ]
    return signals[: len(fired)], signals[len(fired):]


def in_event_order(signals: list[Signal], repeats: list[Signal]) -> list[tuple[Signal, bool]]:
    """``signals`` and ``repeats`` (crossings held back: the incident goes on) in event-time order, each
    with whether it is a repeat; at one time, fires first."""
    return sorted([(s, False) for s in signals] + [(s, True) for s in repeats], key=lambda m: m[0].ts)
