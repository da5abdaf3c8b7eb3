"""Reference commands on the control topic: ``reset`` or ``relearn`` a model's reference.

``reset`` restarts the change statistics and keeps the learned reference;
``relearn`` forgets the reference and starts a new warm-up.  A command names a
model and optionally a version (all versions when absent); its ``id`` makes
applying it idempotent.  ``make_command`` builds one, ``parse_command``
validates one read from Kafka (``None``, logged, when malformed).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

__all__ = ["ACTIONS", "make_command", "parse_command"]

log = logging.getLogger(__name__)
ACTIONS = ("reset", "relearn")


def make_command(action: str, model: str, version: str | None = None, requested_by: str = "cli") -> dict[str, Any]:
    """A new command; raises ``ValueError`` for an unknown action or empty model."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    if not model:
        raise ValueError("model must be a non-empty name")
    return {"id": uuid.uuid4().hex, "action": action, "model": model, "version": version,
            "requested_at": time.time(), "requested_by": requested_by}


def parse_command(raw: bytes | None) -> dict[str, Any] | None:
    """The command in a control message, or ``None`` (logged) when it is not a valid one."""
    try:
        obj = json.loads(raw or b"")
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        command = make_command(str(obj.get("action")), str(obj.get("model") or ""), obj.get("version"), str(obj.get("requested_by", "?")))
        command["id"] = str(obj.get("id") or command["id"])
        return command
    except ValueError as exc:
        log.error("ignoring control message %r: %s", (raw or b"")[:200], exc)
        return None


async def send_command(settings: Any, action: str, model: str, version: str | None = None) -> dict[str, Any]:
    """Produce a command to the control topic (key = model); returns it."""
    from aiokafka import AIOKafkaProducer

    command = make_command(action, model, version)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.control_topic, json.dumps(command).encode(), key=model.encode())
    finally:
        await producer.stop()
    return command
