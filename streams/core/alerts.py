"""The alert state machine: firing once per incident, resolved after a quiet spell.

A signal that fires opens an alert (one ``firing`` record) unless one with the
same fingerprint is already open; further fires only keep it open.  An open
alert resolves (one ``resolved`` record) when its detector has not fired for
``resolve_after`` seconds of event time (it ends then, however late the tick
that notices) — so a persisting change, whose detector re-fires after each
restart, stays one alert, and a lone spike gives one short alert rather than a
storm.  A crossing the detector held back as a repeat of its alarm counts as a
fire of the open alert (``keep_open``), and opens none.  ``escalate`` lets a
more severe fire replace an open alert (the caller resolves the old one and
opens the new).  The tracker pickles with the monitor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from streams.core.signals import Signal
from streams.records import Alert

__all__ = ["SEVERITY_RANK", "AlertTracker", "OpenAlert", "dashboard_url", "make_alert", "more_severe"]

#: Severities from least to most severe.
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

_DASHBOARDS = {"gpu_anomaly": "inferwatch-gpu", "input_drift": "inferwatch-drift"}


def more_severe(signal: Signal, than: Signal) -> bool:
    """``signal`` ranks above ``than`` in :data:`SEVERITY_RANK`."""
    return SEVERITY_RANK.get(signal.severity, 0) > SEVERITY_RANK.get(than.severity, 0)


def dashboard_url(base: str, signal: Signal, start: float, end: float | None) -> str | None:
    """Link to the dashboard for the signal's kind, at the incident's time range (±5 min), with its
    model, version and host selected (and, on the drift dashboard, its feature)."""
    if not base:
        return None
    uid = _DASHBOARDS.get(signal.kind, "inferwatch-model")
    params = {"from": int((start - 300) * 1000), "to": int(((end or start) + 300) * 1000)}
    for name in ("model", "version", "host", *(("feature",) if uid == _DASHBOARDS["input_drift"] else ())):
        value = getattr(signal, name)
        if value is not None:
            params[f"var-{name}"] = value
    return f"{base.rstrip('/')}/d/{uid}?{urlencode(params)}"


def make_alert(
    signal: Signal, status: str, started: float, *, ended: float | None = None,
    gpu_context: list[dict[str, Any]] | None = None, grafana_url: str = "",
) -> Alert:
    """The alert record for a signal in a given state."""
    where = ", ".join(f"{k}={v}" for k, v in signal.labels().items() if k != "kind")
    return Alert(
        fingerprint=signal.fingerprint,
        kind=signal.kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        severity=signal.severity,  # type: ignore[arg-type]
        model=signal.model, version=signal.version, feature=signal.feature, host=signal.host, gpu=signal.gpu,
        score=float(signal.score), threshold=float(signal.threshold), statistic=signal.statistic,
        starts_at=started, ends_at=ended,
        summary=f"{signal.kind.replace('_', ' ')} {status}: {where} (score {signal.score:.3g} / {signal.threshold:.3g})",
        evidence=signal.evidence,
        gpu_context=gpu_context or [],
        dashboard_url=dashboard_url(grafana_url, signal, started, ended),
    )


@dataclass(slots=True)
class OpenAlert:
    """An alert that is firing: its first and latest signal."""

    first: Signal
    latest: Signal
    fires: int = 1
    gpu_context: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started(self) -> float:
        return self.first.ts


class AlertTracker:
    """Open alerts by fingerprint; ``fire`` opens, ``tick`` resolves."""

    def __init__(self, resolve_after: float = 120.0) -> None:
        self.resolve_after = resolve_after
        self.open: dict[str, OpenAlert] = {}

    def fire(self, signal: Signal) -> OpenAlert | None:
        """Record a fire; returns the new ``OpenAlert`` when this opens one, else None."""
        key = signal.fingerprint
        current = self.open.get(key)
        if current is not None:
            current.latest = signal
            current.fires += 1
            return None
        opened = OpenAlert(first=signal, latest=signal)
        self.open[key] = opened
        return opened

    def keep_open(self, key: str, ts: float) -> bool:
        """Count event time ``ts`` as a fire of the open alert ``key`` (its detector crossed again, a
        repeat it did not raise: the incident goes on), so its quiet spell starts later; the latest
        signal's content stays.  Opens nothing; whether ``key`` was open."""
        current = self.open.get(key)
        if current is None:
            return False
        if ts > current.latest.ts:
            current.latest = dataclasses.replace(current.latest, ts=ts)
        return True

    def escalate(self, signal: Signal) -> OpenAlert | None:
        """Remove and return the open alert of ``signal``'s fingerprint if ``signal`` is more severe
        than it (then ``fire(signal)`` opens the escalated alert); else None and nothing changes."""
        current = self.open.get(signal.fingerprint)
        if current is None or not more_severe(signal, current.first):
            return None
        return self.open.pop(signal.fingerprint)

    def tick(self, now: float, keep: Collection[str] = ()) -> list[tuple[OpenAlert, float]]:
        """Close alerts quiet since ``now - resolve_after``, except the fingerprints in ``keep``
        (a more severe fire waits to replace them); returns ``(alert, resolved_at)``,
        ``resolved_at`` being when the quiet spell completed (latest fire + ``resolve_after``)."""
        closed = []
        for key, alert in list(self.open.items()):
            if now - alert.latest.ts >= self.resolve_after and key not in keep:
                closed.append((self.open.pop(key), alert.latest.ts + self.resolve_after))
        return closed

    def is_open(self, key: str) -> bool:
        return key in self.open
