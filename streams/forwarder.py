"""Alerts from the alerts topic to Alertmanager: each delivered once accepted, the firing ones re-sent.

``AlertForwarder.on_alert`` delivers one alert record and keeps the firing alerts
of its partition in a table (the forwarder's changelog), so ``resend_firing``
can re-post them before their ``endsAt`` passes, on this worker or, after a
rebalance, on the partition's next owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from streams.alertmanager import AlertmanagerClient
from streams.metrics import Metrics
from streams.records import Alert
from streams.tables import delete, put

__all__ = ["AlertForwarder"]

log = logging.getLogger(__name__)
_ALERT_DECODER = msgspec.json.Decoder(Alert)


class AlertForwarder:
    """Delivers alert records to ``alertmanager`` (``None``: only keeps ``table``); ``stopping`` says
    when the worker stops, so a delivery that has not been accepted gives up (and is not acked)."""

    def __init__(self, alertmanager: AlertmanagerClient | None, table: Any, metrics: Metrics, stopping: Callable[[], bool]) -> None:
        self.alertmanager, self.table, self.metrics, self.stopping = alertmanager, table, metrics, stopping
        self._lock = asyncio.Lock()  # a re-send never overtakes the resolution of what it re-sends

    async def on_alert(self, event: Any) -> bool:
        """Deliver one alert record; False (not acked) when the worker stops before Alertmanager took it."""
        try:
            alert = _ALERT_DECODER.decode(event.message.value)
        except msgspec.DecodeError as exc:
            log.error("skipping undecodable alert at %s@%d: %s", event.message.tp, event.message.offset, exc)
            return True
        async with self._lock:
            if self.alertmanager is not None:
                delivered = await self.alertmanager.deliver([alert], on_failure=self.metrics.delivery_failures.inc, stopping=self.stopping)
                if not delivered:
                    return False
                self.metrics.delivered.inc()
            key, partition = alert.fingerprint, event.message.partition
            if alert.status == "firing":
                put(self.table, key, event.message.value, partition)
            else:
                delete(self.table, key, partition)
        return True

    async def resend_firing(self) -> None:
        """Re-post every firing alert this worker forwards, so Alertmanager keeps them open.

        Under the delivery lock: a resolution delivered meanwhile would otherwise be
        overtaken by this re-send of the alert it resolves, re-opening it until its TTL.
        """
        if self.alertmanager is None:
            return
        async with self._lock:
            if not self.table.data:
                return
            alerts = [_ALERT_DECODER.decode(v) for v in self.table.data.values()]
            try:
                await self.alertmanager.post(alerts)
                self.metrics.delivered.inc()
            except Exception as exc:  # noqa: BLE001 - next round retries; the failure is counted and logged
                self.metrics.delivery_failures.inc()
                log.warning("re-send of %d firing alerts failed: %s", len(alerts), exc)
