"""Running a worker: make sure the topics exist, then start the Faust worker."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

__all__ = ["ensure_topics", "run_worker"]

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, partitions: int = 1) -> dict[str, int]:
    """Create missing inferwatch topics; returns every topic's partition count.

    Input and alert topics get ``partitions`` when created (existing ones keep
    theirs); the control and dead-letter topics get one.
    """
    wanted = {
        settings.inference_topic: partitions,
        settings.gpu_topic: partitions,
        settings.alerts_topic: partitions,
        settings.deadletter_topic: 1,
        settings.control_topic: 1,
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, n, 1) for t, n in wanted.items() if t not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s", ", ".join(t.name for t in missing))
        described = await admin.describe_topics(list(wanted))
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()


def run_worker(settings: Settings, *, partitions: int = 1, loglevel: str = "info") -> None:
    """Block running one worker until it is stopped (SIGINT / SIGTERM)."""
    import faust

    from streams.app import Service

    counts = asyncio.run(ensure_topics(settings, partitions))
    service = Service(settings, counts)
    faust.Worker(service.app, loglevel=loglevel).execute_from_commandline()
