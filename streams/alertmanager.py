"""Alertmanager API v2 delivery: the payload, the client, retry until accepted.

Identity is the label set, so labels hold only bounded values (kind, severity,
model, version, feature, host, gpu); everything else goes to annotations.
Firing alerts carry ``endsAt`` ``ttl`` seconds ahead of the wall clock and are
re-sent before it passes; a resolution is sent with ``endsAt`` = now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from streams.errors import InferwatchError
from streams.records import Alert

__all__ = ["AlertmanagerClient", "DeliveryError", "evidence_annotation", "gpu_context_annotation", "to_payload"]

log = logging.getLogger(__name__)
_LABELS = ("kind", "severity", "model", "version", "feature", "host", "gpu")
_MAX_ANNOTATION = 4000


class DeliveryError(InferwatchError):
    """Alertmanager did not accept a post."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def evidence_annotation(evidence: dict[str, Any], limit: int = _MAX_ANNOTATION) -> str:
    """The evidence as JSON of at most ``limit`` characters, and always whole JSON: its largest entries
    are left out until it fits, named under ``"omitted"`` (the alert on the alerts topic keeps them)."""
    sizes = {key: len(json.dumps(value, default=str)) for key, value in evidence.items()}
    kept, omitted = dict(evidence), []
    text = json.dumps(kept, default=str)
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if len(text) <= limit:
            break
        del kept[key]
        omitted.append(key)
        text = json.dumps({**kept, "omitted": omitted}, default=str)
    return text if len(text) <= limit else json.dumps({"omitted_entries": len(evidence)})  # names too long to list


def gpu_context_annotation(rows: list[dict[str, Any]], limit: int = _MAX_ANNOTATION) -> str:
    """The GPU context as JSON of at most ``limit`` characters, and always whole JSON: the rows as they
    are; else without their window summaries; else the first rows that fit, then ``{"more_gpus": n}``
    (the alert on the alerts topic keeps them all)."""
    text = json.dumps(rows, default=str)
    if len(text) <= limit:
        return text
    bare = [{k: v for k, v in row.items() if k != "window"} for row in rows]
    text = json.dumps(bare, default=str)
    kept = len(bare)
    while len(text) > limit and kept:
        kept -= 1
        text = json.dumps([*bare[:kept], {"more_gpus": len(bare) - kept}], default=str)
    return text


def to_payload(alert: Alert, *, now: float, ttl: float) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` body."""
    labels = {"alertname": f"inferwatch_{alert.kind}"}
    labels.update({k: str(getattr(alert, k)) for k in _LABELS if getattr(alert, k) is not None})
    annotations = {
        "summary": alert.summary,
        "score": f"{alert.score:.6g}",
        "threshold": f"{alert.threshold:.6g}",
        "statistic": alert.statistic,
        "fingerprint": alert.fingerprint,
        "evidence": evidence_annotation(alert.evidence),
    }
    if alert.gpu_context:
        annotations["gpu_context"] = gpu_context_annotation(alert.gpu_context)
    if alert.dashboard_url:
        annotations["dashboard"] = alert.dashboard_url
    payload: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _iso(min(alert.starts_at, now)),
        "endsAt": _iso(now if alert.status == "resolved" else now + ttl),
    }
    if alert.dashboard_url:
        payload["generatorURL"] = alert.dashboard_url
    return payload


class AlertmanagerClient:
    """Posts alerts to one Alertmanager; ``deliver`` retries with backoff until accepted."""

    def __init__(self, base_url: str, *, ttl: float = 300.0, timeout: float = 5.0, max_backoff: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self.ttl = ttl
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_backoff = max_backoff
        self.failures = 0
        self.delivered = 0

    async def post(self, alerts: Sequence[Alert], now: float | None = None) -> None:
        """One attempt; raises ``DeliveryError`` unless Alertmanager answers 2xx."""
        now = time.time() if now is None else now
        body = [to_payload(a, now=now, ttl=self.ttl) for a in alerts]
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session, session.post(self.url, json=body) as resp:
                if resp.status // 100 != 2:
                    raise DeliveryError(f"Alertmanager answered {resp.status}: {(await resp.text())[:200]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"Alertmanager at {self.url} unreachable: {exc}") from exc

    async def deliver(self, alerts: Sequence[Alert], on_failure: Any = None, stopping: Any = None) -> bool:
        """Post until accepted (True), backing off 0.5 s doubling to ``max_backoff``.

        Gives up only when ``stopping()`` turns true (False: not delivered).
        """
        delay = 0.5
        while stopping is None or not stopping():
            try:
                await self.post(alerts)
            except DeliveryError as exc:
                self.failures += 1
                if on_failure is not None:
                    on_failure()
                log.warning("%s; retrying in %.1fs (%d alerts waiting)", exc, delay, len(alerts))
                for _ in range(int(delay / 0.25)):  # sleep in slices so a stop is noticed quickly
                    if stopping is not None and stopping():
                        return False
                    await asyncio.sleep(0.25)
                delay = min(delay * 2.0, self.max_backoff)
            else:
                self.delivered += 1
                return True
        return False
