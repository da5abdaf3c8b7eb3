"""Reference commands on the control topic: ``reset``, ``relearn`` or ``baseline`` a model's reference.

``reset`` restarts the change statistics and keeps the learned reference;
``relearn`` forgets the reference and starts a new warm-up; ``baseline`` takes
the reference from the version's baseline files again (``INFERWATCH_BASELINE_DIR``).
A command names a model and optionally a version (all versions when absent); its
``id`` makes applying it idempotent.  ``make_command`` builds one, ``parse_command``
validates one read from Kafka (malformed ones are dead-lettered by the worker).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from streams.errors import Rejected

__all__ = ["ACTIONS", "make_command", "parse_command"]

ACTIONS = ("reset", "relearn", "baseline")


def make_command(action: str, model: str, version: str | None = None, requested_by: str = "cli") -> dict[str, Any]:
    """A new command; raises ``ValueError`` for an unknown action or empty model."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    if not model:
        raise ValueError("model must be a non-empty name")
    return {"id": uuid.uuid4().hex, "action": action, "model": model, "version": version,
            "requested_at": time.time(), "requested_by": requested_by}


def parse_command(raw: bytes | None) -> dict[str, Any]:
    """The command in a control message; raises ``Rejected`` (``bad_command``) when it is not one."""
    try:
        obj = json.loads(raw or b"")
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        command = make_command(str(obj.get("action")), str(obj.get("model") or ""), obj.get("version"), str(obj.get("requested_by", "?")))
    except ValueError as exc:
        raise Rejected("bad_command", f"control message: {exc}") from None
    command["id"] = str(obj.get("id") or command["id"])
    if isinstance(obj.get("requested_at"), (int, float)):
        command["requested_at"] = float(obj["requested_at"])
    return command


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
