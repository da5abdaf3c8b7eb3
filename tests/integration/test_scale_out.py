"""Two workers in one group on 4-partition input topics: work is split, then one is killed.

The built-in scenario's two models and two hosts hash to only two of the four
partitions, so a few extra models (steady traffic, fewer events than the
warm-up, so they never alert) are added on the partitions the scenario leaves
empty: whichever two partitions each worker is given, both own models.

(a) the second worker joins while steady "filler" traffic (four more models,
    one per partition, warm-up only) is being produced, so the group rebalances
    with messages in flight; then the scenario is replayed.  Every model's
    events are processed exactly once across the two workers (sum of
    ``inferwatch_events_total`` over both == events produced);
(b) the input drift and the GPU contention each alert once;
(a') KServe requests (one model per partition) wait in the first worker when the
    second joins; their responses come after the rebalance and every pair is
    joined, on whichever worker now owns its partition (the halves were saved on
    revocation and restored by the new owners), none dead-lettered ``unjoined``;
(c) the worker owning the model with the GPU contention in progress is killed
    with SIGKILL while events keep coming; the survivor takes its partitions
    over, restores the detector state from the changelog, processes every event
    (at least once: the victim's uncommitted work is redone), and the incident is
    still alerted exactly once and resolves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import json
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from streams.localstack import free_port
from streams.metrics import events_per_model
from streams.records import Alert
from streams.scenario import MODELS, Scenario, ScenarioMessage, builtin
from streams.settings import Settings
from streams.worker import ensure_topics, spawn_worker, stop_worker, wait_healthy
from tests.integration.service_helpers import KSERVE_REQUEST, KSERVE_RESPONSE, kserve_half, metrics_text, produce, read_alerts, replay_messages, run_settings, wait_for, worker_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
_GENERATION = re.compile(r"generation id (\d+) app consumers id")
_UNJOINED = re.compile(r'^inferwatch_dead_letters_total\{[^}]*reason="unjoined"[^}]*\} [1-9]', re.M)
_RESTORED = re.compile(r'^inferwatch_state_restored_total\{kind="(\w+)"\} ([0-9.e+]+)$', re.M)


def _partition(key: str) -> int:
    """The partition the replay's producer (aiokafka's default partitioner, murmur2) sends ``key`` to."""
    parts = list(range(PARTITIONS))
    return DefaultPartitioner()(key.encode(), parts, parts)


def _models_on(partitions: set[int], prefix: str) -> list[str]:
    """One model name ``<prefix>-<i>`` for each of ``partitions``."""
    empty = set(partitions)
    names: list[str] = []
    for i in range(1000):
        name = f"{prefix}-{i}"
        if _partition(name) in empty:
            empty.discard(_partition(name))
            names.append(name)
        if not empty:
            return names
    raise AssertionError("no model name found for every partition")


def _extra_models() -> list[str]:
    """One model name for each inference partition the scenario's own models leave empty."""
    return _models_on(set(range(PARTITIONS)) - {_partition(m) for m in MODELS}, "scale-model")


class _Filler(threading.Thread):
    """Steady traffic for one model per partition (``rate`` events/s in all) until ``stop`` is set.

    Each model stays below ``cap`` events, under the warm-up, so it only learns;
    ``capped`` tells whether the cap, not ``stop``, ended it.  The events are
    ``fraud-detector``'s incident-free baseline (host ``gpu-node-1``), renamed,
    with event times from the scenario's start (behind the replay, so no host's
    clock is pushed ahead).
    """

    def __init__(self, settings: Settings, scenario: Scenario, rate: float = 50.0, cap: int = 900) -> None:
        super().__init__(daemon=True)
        self.settings, self.rate, self.cap = settings, rate, cap
        self.models = _models_on(set(range(PARTITIONS)), "filler-model")
        steady = Scenario(seconds=scenario.seconds, rate=rate, seed=11, start=scenario.start, malformed=False)
        self.templates = [json.loads(m.value) for m in steady.messages() if m.topic == "inference" and m.key == MODELS[0].encode()]
        self.stop = threading.Event()
        self.sent: Counter[str] = Counter()
        self.capped = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=5)
        await producer.start()
        try:
            start = time.monotonic()
            for i, event in enumerate(self.templates):
                if self.stop.is_set():
                    return
                name = self.models[i % len(self.models)]
                if self.sent[name] >= self.cap:
                    self.capped = True
                    return
                event = {**event, "model": name, "request_id": f"{name}-{i}"}
                await producer.send_and_wait(self.settings.inference_topic, json.dumps(event).encode(), key=name.encode())
                self.sent[name] += 1
                await asyncio.sleep(max(0.0, start + (i + 1) / self.rate - time.monotonic()))
            self.capped = True
        finally:
            await producer.stop()


def _with_extra_models(scenario: Scenario, extra: list[str], per_model_rate: float = 2.0) -> list[ScenarioMessage]:
    """The scenario's messages merged in event time with steady traffic for ``extra`` models.

    The extra traffic is ``fraud-detector``'s incident-free baseline (host
    ``gpu-node-1``, which has no incident), renamed; each extra model gets
    ``per_model_rate`` events/s, fewer in the whole run than the warm-up, so
    its detectors only learn and never alert.
    """
    steady = Scenario(seconds=scenario.seconds, rate=per_model_rate * len(extra), seed=7, start=scenario.start, malformed=False)
    assert per_model_rate * scenario.seconds < 1000, "extra models must stay in warm-up (run_settings: warmup_events=1000)"
    renamed: list[ScenarioMessage] = []
    for i, m in enumerate(x for x in steady.messages() if x.topic == "inference" and x.key == MODELS[0].encode()):
        event = json.loads(m.value)
        event["model"] = name = extra[i % len(extra)]
        event["request_id"] = f"{name}-{i}"
        renamed.append(ScenarioMessage("inference", name.encode(), json.dumps(event).encode(), m.ts))
    return list(heapq.merge(scenario.messages(), renamed, key=lambda m: m.ts))


def _send_kserve(settings: Settings, kind: str, models: list[str], at: float) -> None:
    """One KServe request (or response) of two rows per model, keyed by the model."""
    body = KSERVE_REQUEST if kind == "request" else KSERVE_RESPONSE
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + (".000Z" if kind == "request" else ".020Z")
    for model in models:
        produce(settings, settings.inference_topic, model.encode(), [kserve_half(kind, f"{model}-1", model, body, stamp)])


def _produced(messages: list[ScenarioMessage]) -> Counter[str]:
    """Valid inference events per model (malformed messages carry the key ``broken``)."""
    return Counter(m.key.decode() for m in messages if m.topic == "inference" and m.key != b"broken")


def _restored(text: str) -> dict[str, float]:
    return {kind: float(v) for kind, v in _RESTORED.findall(text)}


def _firing(alerts: list[Alert], kind: str) -> list[Alert]:
    return [a for a in alerts if a.status == "firing" and a.kind == kind]


def _all_resolved(alerts: list[Alert]) -> bool:
    firing = {a.fingerprint for a in alerts if a.status == "firing"}
    return len(firing) >= 2 and firing <= {a.fingerprint for a in alerts if a.status == "resolved"}


def _wait_settled(logs: list[Path], timeout: float = 60.0) -> None:
    """Until every worker has joined the same group generation and is ready in it (a rebalance is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for log in logs:
            text = log.read_text(errors="replace")
            generations = list(_GENERATION.finditer(text))
            ready_after = bool(generations) and "Worker ready" in text[generations[-1].end():]
            states.append((int(generations[-1].group(1)) if generations else None, ready_after))
        if all(ready for _, ready in states) and len({g for g, _ in states}) == 1:
            return
        time.sleep(0.5)
    raise AssertionError(f"the group did not settle: {states}")


def _offsets(settings: Settings) -> dict[int, tuple[int | None, int]]:
    """The group's committed offset and the end offset of every inference partition."""

    async def go() -> dict[int, tuple[int | None, int]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.inference_topic, p) for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(tps)
            return {tp.partition: (await consumer.committed(tp), ends[tp]) for tp in tps}
        finally:
            await consumer.stop()

    return asyncio.run(go())


def _wait_takeover(port: int, topic: str, timeout: float = 90.0) -> None:
    """Until the worker on ``port`` owns every partition of ``topic`` (its lag gauges appear on assignment)."""
    deadline = time.monotonic() + timeout
    wanted = {f'inferwatch_consumer_lag_messages{{partition="{p}",topic="{topic}"}}' for p in range(PARTITIONS)}
    while time.monotonic() < deadline:
        text = metrics_text(port)
        if all(series in text for series in wanted):
            return
        time.sleep(0.5)
    raise AssertionError(f"survivor did not take over every partition of {topic} in {timeout:.0f}s")


def _wait_counts(ports: list[int], wanted: Counter[str], timeout: float = 60.0) -> list[Counter[str]]:
    """Per-worker event counts once their sum reaches ``wanted`` for every model (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        per_worker = [events_per_model(metrics_text(p)) for p in ports]
        total = sum(per_worker, Counter())
        if all(total[m] >= n for m, n in wanted.items()) or time.monotonic() > deadline:
            return per_worker
        time.sleep(1.0)


def test_two_workers_share_partitions_and_survive_a_kill(kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the workers inherit it: Faust's <app_id>-data directory lands here, not in the repo
    settings_a = run_settings(kafka_bootstrap)
    settings_b = dataclasses.replace(settings_a, web_port=free_port())
    settings: Settings = settings_a
    counts = asyncio.run(ensure_topics(settings, PARTITIONS))  # before the workers, so neither races the other
    assert counts[settings.inference_topic] == counts[settings.gpu_topic] == PARTITIONS

    scenario = builtin(rate=20.0)
    contention = scenario.incidents[1]
    extra = _extra_models()
    models = [*MODELS, *extra]
    assert {_partition(m) for m in models} == set(range(PARTITIONS))
    messages = _with_extra_models(scenario, extra)
    cut = scenario.at(contention.start + 25)  # in the middle of the GPU contention
    before = [m for m in messages if m.ts < cut]
    after = [m for m in messages if m.ts >= cut]

    filler = _Filler(settings, scenario)
    models += filler.models
    logs = {"a": tmp_path / "worker-a.log", "b": tmp_path / "worker-b.log"}
    ports = {"a": settings_a.web_port, "b": settings_b.web_port}
    kserve_models = _models_on(set(range(PARTITIONS)), "kserve-model")
    models += kserve_models
    workers = {"a": spawn_worker(settings_a, logs["a"], partitions=PARTITIONS)}
    try:
        wait_healthy(ports["a"], workers["a"], logs["a"])
        _send_kserve(settings, "request", kserve_models, scenario.start)
        waiting = f"inferwatch_kserve_halves_pending {float(len(kserve_models))}"
        wait_for("worker a to hold the KServe requests", lambda: waiting in metrics_text(ports["a"]), timeout=30.0)  # when b joins
        # -- (a) and (b): b joins while events flow, then the scenario ------------------
        filler.start()
        workers["b"] = spawn_worker(settings_b, logs["b"], partitions=PARTITIONS)
        wait_healthy(ports["b"], workers["b"], logs["b"])
        _wait_settled(list(logs.values()))
        _send_kserve(settings, "response", kserve_models, scenario.start)
        time.sleep(2.0)
        filler.stop.set()
        filler.join()
        assert filler.error is None, f"filler traffic failed: {filler.error!r}"
        assert not filler.capped, "the filler ran out before b had joined: the rebalance saw no traffic"
        replay_messages(before, settings, speed=20.0)
        phase1 = read_alerts(settings, lambda alerts: bool(_firing(alerts, "correlated")), timeout=120.0, settle=3.0)
        produced = _produced(before) + filler.sent + Counter({m: 2 for m in kserve_models})
        # short wait: while the inputs are quiet, the workers advance event time with the wall
        # clock, and 30 s of it would resolve the contention that phase (c) needs still open
        per_worker = dict(zip(ports, _wait_counts(list(ports.values()), produced, timeout=20.0)))
        total = sum(per_worker.values(), Counter())
        assert {m: total[m] for m in models} == {m: produced[m] for m in models}, (
            f"events processed != produced; per worker {per_worker}; "
            f"committed vs end offsets of the inference partitions {_offsets(settings)}"
        )
        assert all(sum(c.values()) > 0 for c in per_worker.values()), f"a worker processed nothing: {per_worker}"
        owners = {m: [w for w, c in per_worker.items() if c[m]] for m in models if m not in filler.models}
        assert all(len(o) == 1 for o in owners.values()), f"a model was processed by both workers: {owners}"
        print(f"models by worker: { {w: sorted(m for m in owners if owners[m] == [w]) for w in workers} }")
        assert [(a.model, a.feature) for a in _firing(phase1, "input_drift")] == [("fraud-detector", "x1")]
        assert [(a.model, a.host) for a in _firing(phase1, "correlated")] == [("churn-ranker", "gpu-node-2")]
        texts = [metrics_text(port) for port in ports.values()]
        assert sum(_restored(t).get("kserve_half", 0) for t in texts) >= len(kserve_models), "waiting halves not restored"
        assert not any(_UNJOINED.search(t) for t in texts), "a KServe half was dead-lettered unjoined"

        # -- (c): kill -9 the worker that owns the model with the incident in progress --
        (victim,) = owners[MODELS[1]]
        (survivor,) = set(workers) - {victim}
        before_kill = metrics_text(ports[survivor])
        workers[victim].send_signal(signal.SIGKILL)  # a crash: no clean shutdown, no final commit
        workers[victim].wait()
        replay_messages(after, settings, speed=10.0)  # the survivor takes over meanwhile (session timeout)
        _wait_takeover(ports[survivor], settings.inference_topic)
        alerts = read_alerts(settings, _all_resolved, timeout=150.0, settle=5.0)
        produced_all = _produced(messages) + filler.sent + Counter({m: 2 for m in kserve_models})
        survivor_counts = _wait_counts([ports[survivor]], produced_all - per_worker[victim], timeout=30.0)[0]
        text = metrics_text(ports[survivor])
    except Exception:
        print("worker a:", worker_log(logs["a"]), "worker b:", worker_log(logs["b"]), sep="\n")
        raise
    finally:
        for proc in workers.values():
            stop_worker(proc)

    # The survivor now processes the victim's models (at least once: a few may be seen twice) ...
    for model in models:
        assert per_worker[victim][model] + survivor_counts[model] >= produced_all[model], (model, per_worker, survivor_counts)
    assert survivor_counts[MODELS[1]] > 0
    # ... with their detector state restored from the changelog topics ...
    restored_before, restored_after = _restored(before_kill), _restored(text)
    for kind in ("model", "host"):
        assert restored_after.get(kind, 0) > restored_before.get(kind, 0), (kind, restored_before, restored_after)
    # ... so the incident in progress when the worker died is alerted exactly once, and resolves.
    assert [(a.model, a.host) for a in _firing(alerts, "correlated")] == [("churn-ranker", "gpu-node-2")]
    assert [(a.model, a.feature) for a in _firing(alerts, "input_drift")] == [("fraud-detector", "x1")]
    assert _firing(alerts, "latency_anomaly") == [] and _firing(alerts, "gpu_anomaly") == []
    assert all(a.model in MODELS for a in alerts if a.model), "the extra models must not alert"
    resolved = [a for a in alerts if a.status == "resolved"]
    assert sorted(a.kind for a in resolved) == ["correlated", "input_drift"]
    (end,) = [a.ends_at for a in resolved if a.kind == "correlated"]
    assert end >= scenario.at(contention.end)
