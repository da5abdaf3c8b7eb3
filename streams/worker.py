"""Running a worker: make sure the topics exist, then start the Faust worker.

``spawn_worker`` / ``wait_healthy`` run one as a subprocess (the demo, tests
and benchmarks use them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

__all__ = ["WorkerFailed", "ensure_topics", "run_worker", "spawn_worker", "stop_worker", "wait_healthy"]

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
        return await _partition_counts(admin, list(wanted))
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 30.0) -> dict[str, int]:
    """Partitions of each of ``topics``, once the broker's metadata shows every one of them with some.

    A topic created a moment ago can still be described with no partitions (its
    metadata has not propagated): asking again is the only cure.  Raises
    ``RuntimeError`` naming the topics still without partitions after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(topics)}
        missing = [t for t in topics if not counts.get(t)]
        if not missing:
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics still without partitions after {timeout:.0f}s: {', '.join(missing)}")
        await asyncio.sleep(0.2)


def run_worker(settings: Settings, *, partitions: int = 1, loglevel: str = "info") -> None:
    """Block running one worker until it is stopped (SIGINT / SIGTERM)."""
    import faust

    from streams.app import Service

    counts = asyncio.run(ensure_topics(settings, partitions))
    service = Service(settings, counts)
    _tune_gc()
    faust.Worker(service.app, loglevel=loglevel).execute_from_commandline()


#: Allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections on the event path (~10% of a worker's CPU at CPython's defaults).

    Every event allocates dozens of objects, so the default threshold runs a collection every few
    events, and the older generations are scanned often along with the app's long-lived objects
    (Faust, aiokafka, the detectors).  The objects built at start-up are frozen out of collections
    and young collections run every ``GC_YOUNG_THRESHOLD`` allocations; a batch's garbage is mostly
    freed by reference counting, so memory stays bounded (``bench.throughput`` reports RSS).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


class WorkerFailed(RuntimeError):
    """A spawned worker exited or never became healthy."""


def spawn_worker(settings: Settings, log_path: Path, *, partitions: int = 1) -> subprocess.Popen[bytes]:
    """Start ``inferwatch worker`` in a subprocess configured by ``settings``; output to ``log_path``."""
    env = dict(os.environ)
    for f in dataclasses.fields(settings):
        env[f.metadata["env"]] = str(getattr(settings, f.name))
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--partitions", str(partitions)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 180.0) -> None:
    """Block until ``/health`` on ``port`` answers 200; ``WorkerFailed`` if the worker dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WorkerFailed(f"worker exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise WorkerFailed(f"worker not healthy after {timeout:.0f}s; see {log_path}")


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
