"""Throughput of the Kafka path: a worker end to end next to raw aiokafka, in one run.

``python -m bench.throughput [--events N] [--workers {1,2} | --compare-workers] [--json OUT]``

Starts its own Kafka broker (free ports, temp dir, full JIT), produces ``N``
distinct 64-feature inference events for a handful of models and hosts into one
input topic (model ``i`` on partition ``i % partitions``), then measures on those
same messages:

* ``raw_aiokafka``: a plain aiokafka group consumer reading all N (no decoding);
* ``raw_aiokafka_parse``: the same plus ``orjson.loads`` per message (the fastest
  JSON parser here, to plain dicts, no validation): the ceiling of any consumer
  that reads its events, reported as ``ceiling_ratio_parse_only_vs_raw``;
* ``raw_aiokafka_decode``: the same plus ``InferenceDecoder.decode`` per message;
* ``raw_aiokafka_engine``: decode plus the detection core (``Engine.on_events``) on
  each fetch of ``--batch-size`` records, in process: the worker's work without
  Faust, state tables, publishing or metrics, so the ceiling of any worker built
  on these detectors (``ceiling_ratio_engine_vs_raw``);
* ``worker``: ``inferwatch worker`` subprocess(es) with a fresh app id reading the
  topic from the beginning; events/s from the first processed event to the last,
  seen by polling ``inferwatch_events_total`` on ``/metrics`` (startup excluded),
  and the worker's RSS once all N are processed.

Every rate is "first record to last record" of its phase; CPU seconds per event
(process user+system time, all threads) are reported too because they are far
less noisy than rates on a shared machine.  The worker phase also reports its
``second_half`` (rate and CPU per event from the moment half the events were
processed): the detectors' references are learned by then, so that is the
steady state, without the warm-up.  ``--faust KEY=VALUE`` passes extra
``faust.App`` settings to the worker (through a launcher in this module), for
trying Faust settings without editing ``streams/``.  ``--py-spy BIN`` records the
(first) worker with py-spy during the measured window (collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np

from bench._output import emit, progress_log

__all__ = ["main", "make_events"]

_FAUST_ENV = "INFERWATCH_BENCH_FAUST_SETTINGS"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
N_FEATURES = 64
SIZE_WORKAROUND = 16 * 1024 * 1024


_log = progress_log("throughput")


# -- messages --------------------------------------------------------------------------
def make_events(
    n: int, *, models: int = 4, hosts: int = 4, n_features: int = N_FEATURES, seed: int = 0, chunk: int = 10_000
) -> Iterator[list[tuple[str, bytes]]]:
    """Chunks of ``(model, encoded event)``: ``n`` distinct, stationary events over ``models`` models.

    Models take turns (so every batch has several); each event gets a random host and GPU.
    """
    from streams.decoding import encode_inference_event
    from streams.records import InferenceEvent

    rng = np.random.default_rng(seed)
    names = [f"f{j:02d}" for j in range(n_features)]
    model_names = [f"bench-model-{m}" for m in range(models)]
    host_names = [f"gpu-node-{h}" for h in range(hosts)]
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        feats = rng.standard_normal((size, n_features)).tolist()
        lat = rng.lognormal(3.0, 0.4, size).tolist()
        conf = rng.uniform(0.5, 1.0, size).tolist()
        frau = (rng.random(size) < 0.1).tolist()
        host = rng.integers(0, hosts, size).tolist()
        gpu = rng.integers(0, 4, size).tolist()
        out = []
        for k in range(size):
            i = start + k
            model = model_names[i % models]
            out.append((model, encode_inference_event(InferenceEvent(
                ts=1_700_000_000.0 + i * 0.001, model=model, model_version="v1", latency_ms=lat[k],
                request_id=f"req-{i}", host=host_names[host[k]], gpu=gpu[k], features=dict(zip(names, feats[k])),
                prediction="fraud" if frau[k] else "ok", confidence=conf[k],
            ))))  # fmt: skip
        yield out


async def _produce(bootstrap: str, topic: str, partitions: int, n: int, models: int, hosts: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)
    await producer.start()
    sent = total_bytes = 0
    model_index: dict[str, int] = {}
    start = time.perf_counter()
    try:
        for chunk in make_events(n, models=models, hosts=hosts):
            futures = []
            for model, value in chunk:
                p = model_index.setdefault(model, len(model_index)) % partitions
                futures.append(await producer.send(topic, value, key=model.encode(), partition=p))
                total_bytes += len(value)
            await asyncio.gather(*futures)
            sent += len(chunk)
            if sent % 100_000 == 0 or sent == n:
                _log(f"produced {sent}/{n}")
    finally:
        await producer.stop()
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "events_per_second": round(n / seconds), "message_bytes_mean": round(total_bytes / n, 1),
            "message_bytes_total": total_bytes}


# -- process accounting ------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


# -- raw consumers -----------------------------------------------------------------------
_WORK = ("none", "parse", "decode", "engine")


async def _consume(
    bootstrap: str, topic: str, n: int, work: str, broker_pid: int | None, timeout: float, settings: Any = None,
) -> dict[str, Any]:
    """Read all ``n`` records in fetches of up to ``settings.batch_size``, doing ``work`` on them.

    ``work``: ``none``; ``parse`` (``orjson.loads`` per record, to plain dicts);
    ``decode`` (inferwatch's decoder per record); ``engine`` (decode, then the
    detection core, ``Engine.on_events``, once per fetch: the worker's work
    without Faust, state tables, publishing or metrics).
    """
    import orjson
    from aiokafka import AIOKafkaConsumer

    from streams.core import Engine
    from streams.decoding import InferenceDecoder
    from streams.settings import Settings

    if work not in _WORK:
        raise ValueError(f"work must be one of {_WORK}, got {work!r}")
    settings = settings or Settings()
    batch_size = settings.batch_size
    decode = InferenceDecoder(settings).decode if work in ("decode", "engine") else orjson.loads if work == "parse" else None
    engine = Engine(settings) if work == "engine" else None
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{uuid4().hex[:8]}", auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    count = first_count = decoded = 0
    t_first = t_last = 0.0
    cpu0 = broker0 = 0.0
    deadline = time.monotonic() + timeout
    try:
        while count < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=batch_size)
            for records in batches.values():
                if engine is not None:
                    events = [e for r in records for e in decode(r.value)]  # type: ignore[misc]
                    decoded += len(events)
                    engine.on_events(events)
                elif decode is not None:
                    for r in records:
                        decoded += len(decode(r.value))
                if not count and records:
                    t_first, cpu0 = time.perf_counter(), time.process_time()
                    broker0 = _cpu_seconds(broker_pid) if broker_pid else 0.0
                    first_count = len(records)
                count += len(records)
            t_last = time.perf_counter()
        cpu = time.process_time() - cpu0
        broker_cpu = (_cpu_seconds(broker_pid) - broker0) if broker_pid else None
    finally:
        await consumer.stop()
    if count < n:
        raise RuntimeError(f"raw consumer read {count}/{n} before the timeout")
    seconds = t_last - t_first
    measured = count - first_count
    out = {
        "events": count, "seconds": round(seconds, 3), "events_per_second": round(measured / seconds) if seconds > 0 else None,
        "cpu_seconds": round(cpu, 2), "cpu_us_per_event": round(1e6 * cpu / measured, 1) if measured else None,
    }
    if broker_cpu is not None:
        out["broker_cpu_seconds"] = round(broker_cpu, 2)
    if decode is not None:
        out["parsed_fields" if work == "parse" else "decoded_records"] = decoded
    return out


# -- workers -----------------------------------------------------------------------------
def _worker_settings(bootstrap: str, topic: str, args: argparse.Namespace, data_dir: Path | None = None) -> Any:
    from streams.localstack import free_port
    from streams.settings import Settings

    run = f"bench-{uuid4().hex[:10]}"
    overrides: dict[str, Any] = dict(
        kafka_bootstrap=bootstrap, app_id=run, inference_topic=topic, gpu_topic=f"{run}.gpu", alerts_topic=f"{run}.alerts",
        deadletter_topic=f"{run}.deadletter", control_topic=f"{run}.control", alertmanager_url="", grafana_url="",
        web_port=free_port(),
    )
    if data_dir is not None and "data_dir" in {f.name for f in dataclasses.fields(Settings)}:
        data_dir.mkdir(parents=True, exist_ok=True)
        overrides["data_dir"] = str(data_dir)  # Faust's local files go to the run's temp dir
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.batch_seconds is not None:
        overrides["batch_seconds"] = args.batch_seconds
    return dataclasses.replace(Settings.from_env(), **overrides)


def _spawn(settings: Any, log_path: Path, partitions: int, faust_settings: dict[str, Any]) -> subprocess.Popen[bytes]:
    from streams.worker import spawn_worker

    if not faust_settings:
        return spawn_worker(settings, log_path, partitions=partitions)
    env = dict(os.environ)
    for f in dataclasses.fields(settings):
        env[f.metadata["env"]] = str(getattr(settings, f.name))
    env[_FAUST_ENV] = json.dumps(faust_settings)
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "bench.throughput", "--run-worker", "--partitions", str(partitions)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _events_total(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    from streams.metrics import events_per_model

    return float(sum(events_per_model(text).values()))


def _run_workers(bootstrap: str, topic: str, partitions: int, n: int, count: int, args: argparse.Namespace,
                 broker_pid: int | None, tmp: Path) -> dict[str, Any]:
    from streams.worker import ensure_topics, stop_worker

    base = _worker_settings(bootstrap, topic, args, tmp / "data")
    asyncio.run(ensure_topics(base, partitions))  # pre-create the side topics: no creation race between workers
    from streams.localstack import free_port

    settings = [base] + [dataclasses.replace(base, web_port=free_port()) for _ in range(count - 1)]
    log_dir = args.log_dir or tmp
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log_dir / f"{base.app_id}-{i}.log" for i in range(count)]
    procs: list[subprocess.Popen[bytes]] = []
    spy: subprocess.Popen[bytes] | None = None
    spawned = time.perf_counter()
    try:
        procs = [_spawn(s, lp, partitions, args.faust_settings) for s, lp in zip(settings, logs)]
        _log(f"spawned {count} worker(s) (app id {base.app_id}, pids {[p.pid for p in procs]})")
        if args.py_spy:
            out = Path(args.profile_out or tmp / "worker.pyspy.txt")
            spy = subprocess.Popen([args.py_spy, "record", "--pid", str(procs[0].pid), "--rate", "200", "--idle", "--threads",
                                    "--format", "raw", "--nonblocking", "-o", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_first = t_all = t_half = None
        c_first = c_half = 0.0
        cpu0: list[float] = []
        cpu_half: list[float] = []
        broker0 = 0.0
        per = [0.0] * count
        deadline = time.monotonic() + args.timeout
        last_log = 0.0
        last_total, t_progress, stalled = 0.0, time.perf_counter(), False
        while True:
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise RuntimeError(f"worker {i} exited with {p.returncode}; log:\n{logs[i].read_text(errors='replace')[-3000:]}")
            now = time.perf_counter()
            per = [_events_total(s.web_port) or 0.0 for s in settings]
            total = sum(per)
            if t_first is None and total > 0:
                t_first, c_first = now, total
                cpu0 = [_cpu_seconds(p.pid) for p in procs]
                broker0 = _cpu_seconds(broker_pid) if broker_pid else 0.0
                _log(f"first events processed {now - spawned:.1f}s after spawn")
            if t_all is None and count > 1 and all(c > 0 for c in per):
                t_all = now
            if t_half is None and total >= n / 2:  # references learned long since: the steady second half starts
                t_half, c_half = now, total
                cpu_half = [_cpu_seconds(p.pid) for p in procs]
            if total > last_total:
                last_total, t_progress = total, now
            if total >= n:
                t_last = now
                break
            if t_first is not None and now - t_progress > args.stall:
                _log(f"no progress for {args.stall:.0f}s at {total:.0f}/{n}: reporting a stalled run")
                t_last, stalled = t_progress, True
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers processed {total:.0f}/{n} before the timeout")
            if now - last_log > 10:
                _log(f"workers processed {total:.0f}/{n}")
                last_log = now
            time.sleep(args.poll)
        cpu_end = [_cpu_seconds(p.pid) for p in procs]
        cpu = [c1 - c0 for c1, c0 in zip(cpu_end, cpu0)]
        cpu_second_half = [c1 - c0 for c1, c0 in zip(cpu_end, cpu_half)] if cpu_half else []
        broker_cpu = (_cpu_seconds(broker_pid) - broker0) if broker_pid else None
        rss = [_status_kib(p.pid, "VmRSS") for p in procs]
        hwm = [_status_kib(p.pid, "VmHWM") for p in procs]
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
        for p in procs:
            stop_worker(p)
    seconds = t_last - t_first
    measured = last_total - c_first
    out: dict[str, Any] = {
        "workers": count, "app_id": base.app_id, "events": int(total), "stalled": stalled, "per_worker_events": [int(c) for c in per],
        "startup_seconds": round(t_first - spawned, 1), "seconds": round(seconds, 2),
        "events_per_second": round(measured / seconds) if seconds > 0 else None,
        "cpu_seconds": [round(c, 2) for c in cpu], "cpu_us_per_event": round(1e6 * sum(cpu) / measured, 1) if measured else None,
        "rss_mib": [_mib(r) for r in rss], "rss_peak_mib": [_mib(r) for r in hwm],
    }
    half_events, half_seconds = last_total - c_half, (t_last - t_half) if t_half is not None else 0.0
    if half_events > 0 and half_seconds > 0 and not stalled:
        out["second_half"] = {
            "events": int(half_events), "seconds": round(half_seconds, 2), "events_per_second": round(half_events / half_seconds),
            "cpu_us_per_event": round(1e6 * sum(cpu_second_half) / half_events, 1),
        }
    if broker_cpu is not None:
        out["broker_cpu_seconds"] = round(broker_cpu, 2)
    if t_all is not None:
        out["all_workers_busy_after_seconds"] = round(t_all - t_first, 2)
    if spy is not None:
        out["py_spy_profile"] = str(Path(args.profile_out or tmp / "worker.pyspy.txt"))
    return out


def _run_worker_with_faust_settings(partitions: int) -> None:
    """``--run-worker``: the CLI worker with extra ``faust.App`` settings from the environment."""
    import faust.app.base

    extra = json.loads(os.environ.get(_FAUST_ENV, "{}"))
    original = faust.app.base.App.__init__

    def init(self: Any, id: str, **options: Any) -> None:  # noqa: A002 - faust's own parameter name
        original(self, id, **{**options, **extra})

    faust.app.base.App.__init__ = init  # type: ignore[method-assign]
    from streams.cli import main as cli

    cli.main(["worker", "--partitions", str(partitions)], prog_name="inferwatch")


def _faust_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# -- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events produced and consumed (default 200000)")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1, help="worker processes in one group (default 1)")
    parser.add_argument("--compare-workers", action="store_true", help="run 1 then 2 workers (separate app ids) on the same topic")
    parser.add_argument("--partitions", type=int, help="input topic partitions (default 1; 4 with two workers)")
    parser.add_argument("--models", type=int, default=4, help="distinct models (default 4)")
    parser.add_argument("--hosts", type=int, default=4, help="distinct hosts (default 4)")
    parser.add_argument("--batch-size", type=int, help="INFERWATCH_BATCH_SIZE for the worker (default: environment / 1000)")
    parser.add_argument("--batch-seconds", type=float, help="INFERWATCH_BATCH_SECONDS for the worker")
    parser.add_argument("--faust", action="append", default=[], metavar="KEY=VALUE", help="extra faust.App setting (JSON value), repeatable")
    parser.add_argument("--size-workaround", action="store_true",
                        help="raise the broker's message.max.bytes and the worker's producer_max_request_size to 16 MiB "
                             "(for a worker whose state records exceed 1 MiB without creating its changelogs to allow it)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw aiokafka phases")
    parser.add_argument("--kafka", help="use this broker instead of starting one")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between /metrics polls (default 0.25)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per phase (default 3600)")
    parser.add_argument("--stall", type=float, default=60.0, help="stop a worker phase after this many seconds without progress (default 60)")
    parser.add_argument("--py-spy", help="py-spy binary: record the first worker (raw collapsed stacks)")
    parser.add_argument("--profile-out", help="where py-spy writes (default: temp dir)")
    parser.add_argument("--log-dir", type=Path, help="keep the worker logs here (default: the run's temp dir, removed)")
    parser.add_argument("--json", type=Path, help="write the result JSON here too")
    parser.add_argument("--run-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_worker:
        _run_worker_with_faust_settings(args.partitions or 1)
        return {}
    args.faust_settings = {k: _faust_value(v) for k, v in (item.split("=", 1) for item in args.faust)}
    broker_config: dict[str, str] = {}
    if args.size_workaround:
        # A 64-feature model's state snapshot (a changelog record) is ~3.1 MB while its detectors
        # warm up: over Kafka's and aiokafka's 1 MiB defaults, the worker crashes on its first batch.
        args.faust_settings.setdefault("producer_max_request_size", SIZE_WORKAROUND)
        broker_config["message.max.bytes"] = str(SIZE_WORKAROUND)
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the finally blocks: workers and Kafka stop

    signal.signal(signal.SIGTERM, on_term)
    modes = [1, 2] if args.compare_workers else [args.workers]
    partitions = args.partitions or (4 if max(modes) > 1 else 1)

    from streams.localstack import LocalKafka, free_port

    result: dict[str, Any] = {
        "benchmark": "throughput_kafka_path",
        "events": args.events,
        "features": N_FEATURES,
        "models": args.models,
        "hosts": args.hosts,
        "partitions": partitions,
        "machine": {"cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "platform": platform.platform()},
    }
    with tempfile.TemporaryDirectory(prefix="inferwatch-bench-") as tmpname:
        tmp = Path(tmpname)
        kafka = None
        try:
            if args.kafka:
                bootstrap, broker_pid = args.kafka, None
            else:
                kafka = LocalKafka(tmp / "kafka", port=free_port(), controller_port=free_port(), jvm_opts=(), extra_config=broker_config)
                _log("starting Kafka ...")
                kafka.start()
                bootstrap, broker_pid = kafka.address, kafka.pid()
                _log(f"Kafka up at {bootstrap}")
            topic = f"bench-{uuid4().hex[:10]}.inference"
            _log(f"producing {args.events} events to {topic} ({partitions} partitions) ...")
            produced = asyncio.run(_produce(bootstrap, topic, partitions, args.events, args.models, args.hosts))
            result["message_bytes_mean"] = produced.pop("message_bytes_mean")
            result["message_bytes_total"] = produced.pop("message_bytes_total")
            result["produce"] = produced
            if not args.no_raw:
                settings = _worker_settings("unused:0", "unused", args)  # the worker's detector settings and batch size
                for work, key, what in (("none", "raw_aiokafka", ""), ("parse", "raw_aiokafka_parse", " + orjson.loads"),
                                        ("decode", "raw_aiokafka_decode", " + InferenceDecoder"),
                                        ("engine", "raw_aiokafka_engine", " + InferenceDecoder + Engine")):
                    _log(f"raw aiokafka consumer{what} ...")
                    result[key] = asyncio.run(_consume(bootstrap, topic, args.events, work, broker_pid, args.timeout, settings))
                    _log(f"raw{what}: {result[key]['events_per_second']} events/s, {result[key]['cpu_us_per_event']} us CPU/event")
            for count in modes:
                _log(f"{count} worker(s) ...")
                run = _run_workers(bootstrap, topic, partitions, args.events, count, args, broker_pid, tmp)
                _log(f"{count} worker(s): {run['events_per_second']} events/s, RSS {run['rss_mib']} MiB")
                result["worker" if count == 1 else "workers_2"] = run
        finally:
            if kafka is not None:
                kafka.stop()
    raw = result.get("raw_aiokafka", {}).get("events_per_second")
    for key, name in (
        ("worker", "ratio_worker_vs_raw"), ("workers_2", "ratio_two_workers_vs_raw"),
        ("raw_aiokafka_parse", "ceiling_ratio_parse_only_vs_raw"), ("raw_aiokafka_engine", "ceiling_ratio_engine_vs_raw"),
    ):
        rate = result.get(key, {}).get("events_per_second")
        if raw and rate:
            result[name] = round(rate / raw, 3)
    if "worker" in result and "workers_2" in result:
        result["ratio_two_vs_one"] = round(result["workers_2"]["events_per_second"] / result["worker"]["events_per_second"], 3)
    result["target_ratio_worker_vs_raw"] = 0.5
    probe = _worker_settings("unused:0", "unused", args)
    result["settings"] = {
        "batch_size": probe.batch_size, "batch_seconds": probe.batch_seconds, "warmup_events": probe.warmup_events,
        "faust_overrides": args.faust_settings, "kafka_jvm_opts": [] if not args.kafka else "external broker",
        "broker_config": broker_config,
    }
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
