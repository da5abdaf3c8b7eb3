"""Events through consumer-group rebalances: none skipped, none processed twice.

``python -m bench.rebalance [--rate R] [--seconds S] [--plan PLAN] [--json OUT]``

Starts its own Kafka broker, creates 4-partition input topics, starts one
worker, then produces ``rate`` distinct 64-feature inference events/s for
``seconds`` (8 models spread over the partitions) while the ``plan`` runs:
``AT:start:NAME`` starts another worker in the same group at second ``AT``,
``AT:kill:NAME`` kills one with SIGKILL (its uncommitted work is redone by the
others, so kills may add duplicates, never gaps).  When production ends and
every live worker is healthy, the per-model ``inferwatch_events_total`` of
every worker (a killed one: its last scrape before the kill) are summed and
compared with what was produced, and the workers' consumer seeks (messages the
consumer skipped and was sent back for) are counted.  The default plan only
adds workers: every event must be counted exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._output import emit, progress_log
from bench.throughput import make_events
from streams.metrics import events_per_model, sample_sum

__all__ = ["main"]

DEFAULT_PLAN = "5:start:b,12:start:c,19:start:d,26:start:e"


_log = progress_log("rebalance")


def _scrape(port: int) -> tuple[Counter[str], float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return events_per_model(text), sample_sum(text, "inferwatch_consumer_seeks_total")


def _produce(bootstrap: str, topic: str, events: list[tuple[str, bytes]], rate: float) -> None:
    from aiokafka import AIOKafkaProducer

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            start = time.monotonic()
            for i, (model, value) in enumerate(events):
                await producer.send(topic, value, key=model.encode())
                ahead = start + i / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def _parse_plan(plan: str) -> list[tuple[float, str, str]]:
    steps = []
    for step in plan.split(","):
        at, action, name = step.split(":")
        if action not in ("start", "kill"):
            raise SystemExit(f"--plan: action must be start or kill, got {action!r}")
        steps.append((float(at), action, name))
    return sorted(steps)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=400.0, help="events produced per second (default 400)")
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds of production (default 40)")
    parser.add_argument("--plan", default=DEFAULT_PLAN, help=f"AT:start|kill:NAME steps (default {DEFAULT_PLAN})")
    parser.add_argument("--json", type=Path, help="write the result JSON here too")
    args = parser.parse_args(argv)

    from streams.localstack import LocalKafka, free_port
    from streams.settings import Settings
    from streams.worker import ensure_topics, spawn_worker, stop_worker, wait_healthy

    plan = _parse_plan(args.plan)
    with tempfile.TemporaryDirectory(prefix="inferwatch-rebalance-") as tmp_name:
        tmp = Path(tmp_name)
        kafka = LocalKafka(tmp / "kafka", port=free_port(), controller_port=free_port())
        kafka.start()
        workers: dict[str, tuple[subprocess.Popen[bytes] | None, int]] = {}
        try:
            run = f"rebalance-{os.getpid()}"
            settings = Settings(
                kafka_bootstrap=kafka.address, app_id=run, inference_topic=f"{run}.inference", gpu_topic=f"{run}.gpu",
                alerts_topic=f"{run}.alerts", deadletter_topic=f"{run}.deadletter", control_topic=f"{run}.control",
                alertmanager_url="", data_dir=str(tmp / "data"),
            )
            asyncio.run(ensure_topics(settings, 4))
            n = int(args.seconds * args.rate)
            events = [e for chunk in make_events(n, models=8, hosts=4) for e in chunk]
            produced = Counter(model for model, _ in events)

            def start(name: str) -> tuple[subprocess.Popen[bytes], int]:
                own = dataclasses.replace(settings, web_port=free_port())
                proc = spawn_worker(own, tmp / f"{name}.log", partitions=4)
                workers[name] = (proc, own.web_port)
                return proc, own.web_port

            proc, port = start("a")
            wait_healthy(port, proc, tmp / "a.log")
            dead: Counter[str] = Counter()
            dead_seeks = 0.0
            producer = threading.Thread(target=_produce, args=(kafka.address, settings.inference_topic, events, args.rate))
            producer.start()
            t0 = time.monotonic()
            for at, action, name in plan:
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                _log(f"{time.monotonic() - t0:.1f}s {action} {name}")
                if action == "start":
                    start(name)
                    continue
                proc, port = workers[name]
                if proc is None:
                    continue
                counts, seeks = _scrape(port)
                dead += counts
                dead_seeks += seeks
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                workers[name] = (None, port)
            producer.join()
            _log(f"produced {n} events; waiting for the workers")
            for name, (proc, port) in workers.items():
                if proc is not None:
                    wait_healthy(port, proc, tmp / f"{name}.log")
            deadline = time.monotonic() + 120
            while True:
                scraped = [_scrape(port) for proc, port in workers.values() if proc is not None]
                total = sum((c for c, _ in scraped), dead)
                if all(total[m] >= produced[m] for m in produced) or time.monotonic() > deadline:
                    break
                time.sleep(2.0)
            time.sleep(3.0)  # anything still in flight lands
            scraped = [_scrape(port) for proc, port in workers.values() if proc is not None]
            total = sum((c for c, _ in scraped), dead)
            seeks = dead_seeks + sum(s for _, s in scraped)
        finally:
            for proc, _ in workers.values():
                if proc is not None:
                    stop_worker(proc)
            kafka.stop()

    missing = sum(max(0, produced[m] - total[m]) for m in produced)
    duplicates = sum(max(0, total[m] - produced[m]) for m in produced)
    result = {
        "benchmark": "rebalance",
        "rate": args.rate, "seconds": args.seconds, "plan": args.plan, "partitions": 4,
        "produced": n, "counted": sum(total[m] for m in produced), "missing": missing, "duplicates": duplicates,
        "consumer_seeks": seeks, "workers": sorted(workers),
        "note": "kills may add duplicates (uncommitted work is redone); missing must be 0 for every plan, "
                "duplicates 0 for a plan without kills",
    }
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
