"""The Faust application: topics, tables, agents, timers and web pages.

``Service(settings, partitions)`` builds one ``faust.App`` whose agents drive
the synchronous ``Engine``: the inference and GPU agents consume in batches of
records taken straight from the consumer's fetches (``streams.input_batches``;
concurrency 1, faust-streaming issue #606 — scale by partitions), the
forwarder agent delivers alerts to Alertmanager (``streams.forwarder``) and
acks only after it accepted, the control agent records reference commands.
Detector state and waiting KServe halves (``streams.waiting_halves``) live in
tables with changelog topics; the GPU state rows, host incidents and commands
in single-partition global tables every worker reads whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import logging
import time
from collections.abc import Collection
from typing import Any

import faust
from faust.types import TP
import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams import eager_delivery, input_batches, input_flow
from streams.alertmanager import AlertmanagerClient
from streams.baselines import Baselines
from streams.control import parse_command
from streams.core import Engine
from streams.core.correlation import HostView
from streams.core.engine import Output
from streams.core.gpu_monitor import GpuState
from streams.deadletter import dead_letter, to_kafka
from streams.errors import Rejected
from streams.decoding import GpuDecoder, InferenceDecoder
from streams.forwarder import AlertForwarder
from streams.intake import Intake, IntakeResult, message_headers
from streams.input_batches import Chunk
from streams.input_gate import InputGate
from streams.metrics import Metrics
from streams.offsets import Admission, Ticket
from streams.records import DeadLetter
from streams.routing import Routing
from streams.settings import Settings
from streams.tables import DecodedView, put
from streams.waiting_halves import WaitingHalves

__all__ = ["Service"]

log = logging.getLogger(__name__)
_GPU_STATE_DECODER = msgspec.json.Decoder(GpuState)
_MAX_READY_LAG = 1000


class Service:
    """One inferwatch worker: the Faust app and the engine it drives."""

    def __init__(self, settings: Settings, partitions: dict[str, int], registry: CollectorRegistry | None = None) -> None:
        self.settings = s = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry, max_features=s.metrics_max_features)
        os.makedirs(s.data_dir, exist_ok=True)  # faust creates only the last level of its datadir
        self.app = app = faust.App(
            s.app_id,
            broker=[f"kafka://{h}" for h in s.kafka_bootstrap.split(",")],
            store="memory://",
            datadir=os.path.join(s.data_dir, "{conf.name}-data"),
            key_serializer="raw",
            value_serializer="raw",
            web_host=s.web_host,
            web_port=s.web_port,
            consumer_auto_offset_reset="earliest",
            broker_max_poll_records=2 * s.batch_size,  # one fetch usually fills a batch (streams.input_batches)
            stream_buffer_maxsize=4 * s.batch_size,
            consumer_max_fetch_size=8 * 1024 * 1024,
            topic_disable_leader=True,
            table_standby_replicas=0,
            stream_wait_empty=False,
            producer_max_request_size=s.max_state_bytes + 1024 * 1024,
            broker_session_timeout=s.session_timeout_seconds,
            broker_heartbeat_interval=max(1.0, s.session_timeout_seconds / 4),  # shutdown must not wait on an alert Alertmanager has not taken
        )
        n_inf, n_gpu, n_alerts = (partitions[t] for t in (s.inference_topic, s.gpu_topic, s.alerts_topic))
        self.inference_topic = app.topic(s.inference_topic, partitions=n_inf)
        self.gpu_topic = app.topic(s.gpu_topic, partitions=n_gpu)
        self.alerts_topic = app.topic(s.alerts_topic, partitions=n_alerts)
        self.deadletter_topic = app.topic(s.deadletter_topic)
        self.control_topic = app.topic(s.control_topic)
        # Detector state can exceed Kafka's default 1 MB record limit: allow more on these changelogs.
        big = {"max.message.bytes": str(s.max_state_bytes)}
        self.model_state = app.Table("model_state", partitions=n_inf, value_type=bytes, extra_topic_configs=big)
        self.host_state = app.Table("host_state", partitions=n_gpu, value_type=bytes, extra_topic_configs=big)
        self.kserve_waiting = app.Table("kserve_waiting", partitions=n_inf, value_type=bytes, extra_topic_configs=big)
        self.forwarder_state = app.Table("forwarder_state", partitions=n_alerts, value_type=bytes)
        self.gpu_states = app.GlobalTable("gpu_states", partitions=1, value_type=bytes)
        self.incidents = app.GlobalTable("incidents", partitions=1, value_type=bytes)
        self.commands = app.GlobalTable("commands", partitions=1, value_type=bytes)
        self.engine = Engine(
            s,
            gpu_states=DecodedView(self.gpu_states, _GPU_STATE_DECODER.decode),
            incidents=DecodedView(self.incidents, msgspec.json.Decoder(HostView).decode),
            store=self._load,
            metrics=self.metrics,
            baselines=Baselines(s.baseline_dir, s),
        )
        self.engine.factory.latency(), self.engine.factory.gpu()  # pay threshold calibration before consuming
        self.inference_decoder = InferenceDecoder(s)
        self.inference_intake = Intake(self.inference_decoder)
        self.gpu_intake = Intake(GpuDecoder(s))
        alertmanager = AlertmanagerClient(s.alertmanager_url, ttl=s.alertmanager_ttl_seconds) if s.alertmanager_url else None
        self.forwarder = AlertForwarder(alertmanager, self.forwarder_state, self.metrics, stopping=lambda: bool(app.should_stop))
        # The worker's own account of processed input offsets decides what is committed (see streams.offsets).
        self.gate = InputGate(app, s.kafka_bootstrap, s.app_id, (s.inference_topic, s.gpu_topic), self.metrics)
        self.ledger = self.gate.ledger
        self.waiting = WaitingHalves(self.kserve_waiting, self.inference_intake, self.ledger, app.consumer, s.inference_topic, self.metrics)
        self.inputs = input_batches.install(app.consumer, (s.inference_topic, s.gpu_topic))  # no Faust events per input record
        eager_delivery.install(app.consumer)  # no asyncio tasks per message of the other topics
        input_flow.install(app.consumer)  # no fetch stalls in front of the inputs
        self._batch_lock = asyncio.Lock()  # a revocation waits for the batch in flight
        self.routing = Routing(self.metrics)
        self._dirty: dict[tuple[str, str], bool] = {}
        self._snapshot_at: dict[TP | None, float] = {}
        self._register()

    # -- state ----------------------------------------------------------------
    def _load(self, key: str) -> bytes | None:
        table = self.model_state if key.startswith("model:") else self.host_state
        return table.data.get(key)

    async def _publish(self, out: Output) -> None:
        for alert in out.alerts:
            log.info("alert %s %s %s", alert.status, alert.kind, alert.summary)
            await self.alerts_topic.send(key=alert.fingerprint.encode(), value=msgspec.json.encode(alert))
        for key, row in out.gpu_states.items():
            put(self.gpu_states, key, msgspec.json.encode(row), 0)
        for host, view in out.incidents.items():
            put(self.incidents, host, msgspec.json.encode(view), 0)
        self._dirty.update((("model", m), True) for m in out.models)
        self._dirty.update((("host", h), True) for h in out.hosts)
        urgent = {("model", a.model) for a in out.alerts if a.model} | {("host", a.host) for a in out.alerts if a.kind == "gpu_anomaly" and a.host}
        self._snapshot(urgent)

    def _input_tp(self, kind: str, name: str) -> TP | None:
        """The input partition whose events a model's (or host's) state follows."""
        partition = self.routing.partition(kind, name)
        if partition is None:
            return None
        return TP(self.settings.inference_topic if kind == "model" else self.settings.gpu_topic, partition)

    def _snapshot(self, urgent: Collection[tuple[str, str]] = (), everything: bool = False) -> None:
        """Write changed state to the changelog, a whole input partition at a time: at once when its
        alerts changed, else at most every ``snapshot_interval_seconds`` (so a crash loses at most that
        much detector learning).  A partition written whole is persisted as far as it was processed:
        only that far may its offsets be committed, so a successor never resumes past its state."""
        now = time.monotonic()
        by_tp: dict[TP | None, list[tuple[str, str]]] = {}
        for item in self._dirty:
            by_tp.setdefault(self._input_tp(*item), []).append(item)
        for tp, items in by_tp.items():
            due = everything or any(i in urgent for i in items) or now - self._snapshot_at.get(tp, 0.0) >= self.settings.snapshot_interval_seconds
            if not due or tp is None:  # None: never, every dirty model or host came from a partition
                continue
            for item in items:
                kind, name = item
                if kind == "model" and name in self.engine.models:
                    key, data = self.engine.snapshot_model(name)
                    put(self.model_state, key, data, tp.partition)
                elif kind == "host" and name in self.engine.hosts:
                    key, data = self.engine.snapshot_host(name)
                    put(self.host_state, key, data, tp.partition)
                del self._dirty[item]
            self._snapshot_at[tp] = now
            if self.ledger.owns(tp):
                self.ledger.persist(tp)

    def _persist_clean(self, tickets: list[Ticket]) -> None:
        """Partitions of a finished batch with no unwritten state are persisted as far as processed."""
        dirty = {self._input_tp(*item) for item in self._dirty}
        for tp in {t.tp for t in tickets} - dirty:
            if self.ledger.owns(tp):
                self.ledger.persist(tp)

    async def _dead_letter(self, letter: DeadLetter) -> None:
        self.metrics.dead_letters.labels(letter.topic, letter.reason).inc()
        key, value, headers = to_kafka(letter)
        await self.deadletter_topic.send(key=key, value=value, headers=headers)

    async def _reject(self, message: Any, rejected: Rejected) -> None:
        """Dead-letter a consumed message for ``rejected``'s reason."""
        m = message
        await self._dead_letter(dead_letter(rejected, topic=m.topic, partition=m.partition, offset=m.offset,
                                            key=m.key, value=m.value, headers=message_headers(m.headers)))

    async def _intake(self, chunks: list[Chunk], intake: Intake[Any]) -> tuple[list[Any], set[str], list[tuple[Ticket, Any]]]:
        """Decode a batch; dead-letters the bad records; returns the events, their keys and the admitted
        ``(ticket, record)`` pairs.  Only records the ledger admits are decoded; records of a partition
        revoked meanwhile are left out (its next owner processes them)."""
        gate = self.gate
        admitted: list[tuple[Ticket, Any]] = []
        for chunk in chunks:
            tp, generation = chunk.tp, chunk.generation_id
            for record in chunk.records:
                ticket = gate.admit(tp, record.offset, generation)
                if ticket is Admission.HOLE:
                    ticket = await gate.fill_hole(tp, record.offset)  # the only await: ledger state may change meanwhile
                if ticket is not None:
                    admitted.append((ticket, record))
        records: list[Any] = []
        keys: set[str] = set()
        kept: list[tuple[Ticket, Any]] = []
        for ticket, m in admitted:
            if not self.ledger.current(ticket):
                continue
            result = intake.process(
                topic=m.topic, partition=m.partition, offset=m.offset, key=m.key, value=m.value,
                headers=message_headers(m.headers) if m.headers else (),
                timestamp=m.timestamp / 1000.0 if m.timestamp is not None else 0.0,
            )
            kept.append((ticket, m))
            await self._take(result, m.topic, m.partition, records, keys)
        return records, keys, kept

    async def _take(self, result: IntakeResult[Any], topic: str, partition: int, records: list[Any], keys: set[str]) -> None:
        """Dead-letter what a decoded message let go (itself, or KServe halves held for it or dropped
        unjoined meanwhile); add its records to ``records`` and their models or hosts to ``keys``."""
        for letter in ([result.dead] if result.dead is not None else []) + result.earlier:
            await self._dead_letter(letter)
        for record in result.records:
            records.append(record)
            model = getattr(record, "model", None)
            key = model or record.host
            self.routing.see(topic, partition, "model" if model else "host", key)
            keys.add(key)

    async def _restore_waiting(self) -> tuple[list[Any], set[str]]:
        """KServe halves persisted for partitions now ready (``streams.waiting_halves``), decoded again."""
        records: list[Any] = []
        keys: set[str] = set()
        for message, result in self.waiting.restore():
            await self._take(result, message.topic, message.partition, records, keys)
        return records, keys

    # -- handlers -------------------------------------------------------------
    async def on_inference(self, chunks: list[Chunk]) -> None:
        async with self._batch_lock:
            restored, models = await self._restore_waiting()
            records, more, admitted = await self._intake(chunks, self.inference_intake)
            self.metrics.observe_kserve(self.inference_decoder.kserve.dropped, self.inference_decoder.kserve.pending)
            for model in models | more:
                self._apply_commands(model)
            await self._run(self.engine.on_events, restored + records, admitted)

    async def on_gpu(self, chunks: list[Chunk]) -> None:
        async with self._batch_lock:
            records, _, admitted = await self._intake(chunks, self.gpu_intake)
            await self._run(self.engine.on_samples, records, admitted)

    async def _run(self, step: Any, records: list[Any], admitted: list[tuple[Ticket, Any]]) -> None:
        """One engine step over a batch's records, then its tickets are done and its output published.

        If the step fails, the batch's admitted records are dead-lettered, never lost, and the worker goes on.
        """
        out: Output | None = None
        if records:
            try:
                out = step(records)
            except Exception as exc:  # noqa: BLE001 - a bug in a detector must not stop the worker
                log.exception("engine failed on a batch of %d records; dead-lettering its messages", len(records))
                failure = Rejected("processing_error", f"{type(exc).__name__}: {exc}")
                for _, record in admitted:
                    await self._reject(record, failure)
        tickets = [ticket for ticket, _ in admitted]
        self.ledger.done(tickets)  # the state in memory now holds the batch; _publish persists it
        self.waiting.save()  # before any partition is persisted: its offsets never pass a half not saved
        if out is not None:
            await self._publish(out)
        self._persist_clean(tickets)

    def _apply_commands(self, model: str) -> None:
        raw = self.commands.data.get(model)
        for command in json.loads(raw) if raw else []:
            if self.engine.command(command["id"], command["action"], model, command.get("version")):
                self.metrics.reference_commands.labels(command["action"]).inc()

    async def on_control(self, event: Any) -> None:
        m = event.message
        try:
            command = parse_command(m.value)
        except Rejected as exc:
            await self._reject(m, exc)
            return
        pending = json.loads(self.commands.data.get(command["model"], b"[]"))
        pending = [*pending[-9:], command]
        put(self.commands, command["model"], json.dumps(pending).encode(), 0)
        log.info("control: %s %s %s queued (id %s)", command["action"], command["model"], command.get("version") or "all versions", command["id"])

    # -- wiring ---------------------------------------------------------------
    def _register(self) -> None:
        app, s = self.app, self.settings

        # The input agents subscribe their topics (so the group assigns them), but their records bypass
        # the stream: they arrive as chunks from the consumer's fetches (streams.input_batches).
        @app.agent(self.inference_topic, name="inference", concurrency=1)
        async def inference(stream: Any) -> None:
            async for chunks in self.inputs.batches(s.inference_topic, s.batch_size, s.batch_seconds):
                await self.on_inference(chunks)

        @app.agent(self.gpu_topic, name="gpu", concurrency=1)
        async def gpu(stream: Any) -> None:
            async for chunks in self.inputs.batches(s.gpu_topic, s.batch_size, s.batch_seconds):
                await self.on_gpu(chunks)

        @app.agent(self.alerts_topic, name="forwarder", concurrency=1)
        async def forwarder(stream: Any) -> None:
            manual = stream.noack()  # the offset advances only past alerts Alertmanager accepted
            async for event in manual.events():
                if await self.forwarder.on_alert(event):
                    await manual.ack(event)

        @app.agent(self.control_topic, name="control", concurrency=1)
        async def control(stream: Any) -> None:
            async for event in stream.events():
                await self.on_control(event)

        @app.timer(s.alertmanager_resend_seconds)
        async def resend() -> None:
            await self.forwarder.resend_firing()

        @app.timer(min(5.0, s.snapshot_interval_seconds))
        async def housekeeping() -> None:
            self.gate.update_lag()
            async with self._batch_lock:  # KServe halves that waited too long though no KServe half came, or to restore
                for letter in self.inference_intake.expired():
                    await self._dead_letter(letter)
                restored, _ = await self._restore_waiting()
                await self._run(self.engine.on_events, restored, [])  # saves the waiting halves, the expired ones gone
                self.metrics.observe_kserve(self.inference_decoder.kserve.dropped, self.inference_decoder.kserve.pending)
            out = self.engine.tick(time.time())
            await self._publish(out)

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            return web.bytes(generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        @app.page("/health")
        async def health(web: Any, request: Any) -> Any:
            assigned = bool(self.app.consumer.assignment()) if self.app.consumer else False
            lag = self.gate.update_lag() if assigned else None
            ok = assigned and lag is not None and lag <= _MAX_READY_LAG
            return web.json({"status": "ok" if ok else "starting", "assigned": assigned, "max_lag": lag}, status=200 if ok else 503)

        @app.on_partitions_assigned.connect
        async def assigned(sender: Any, assigned: Any, **_: Any) -> None:
            await self.gate.assign(assigned)

        @app.on_partitions_revoked.connect
        async def revoked(sender: Any, revoked: Any, **_: Any) -> None:
            async with self._batch_lock:  # the batch in flight finishes first
                self.waiting.release(revoked)  # saved, then let go: their next owner restores them
                self._snapshot(everything=True)  # hand over the latest state before another worker takes it
                self.engine.forget(list(self.engine.models) + list(self.engine.hosts))
                await self.gate.revoke(revoked)
