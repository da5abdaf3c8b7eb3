"""An inference event that names its GPU by UUID only is joined to that GPU, not to its whole host."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.core import Engine
from streams.core.gpu_monitor import GpuState, gpu_key
from streams.metrics import Metrics
from streams.records import InferenceEvent
from streams.settings import Settings


def _event(uuid: str | None, host: str | None = "node-1", ts: float = 1.7e9) -> InferenceEvent:
    return InferenceEvent(ts=ts, model="fraud", model_version="v1", host=host, gpu_uuid=uuid, latency_ms=20.0, confidence=0.9)


def test_a_gpu_uuid_with_its_host_is_joined_to_that_gpu_and_exported_as_serving_it() -> None:
    states = {gpu_key("node-1", g): GpuState(host="node-1", gpu=str(g), uuid=f"GPU-{g}", ts=1.7e9) for g in range(3)}
    states[gpu_key("node-2", 0)] = GpuState(host="node-2", gpu="0", uuid="GPU-x", ts=1.7e9)
    registry = CollectorRegistry()
    engine = Engine(Settings(), gpu_states=states, metrics=Metrics(registry))
    engine.on_events([_event("GPU-2"), _event("GPU-unknown"), _event("GPU-x"), _event(None)])
    gpus = engine.models["fraud"].gpus
    # GPU-2 is node-1's GPU 2; an unknown UUID, or one on another host, is the whole host as before
    assert set(gpus) == {("node-1", "2"), ("node-1", None)}
    assert [s.gpu for s in engine.triage.context({("node-1", "2"): 1.7e9}, states, "node-1")] == ["2"]
    text = generate_latest(registry).decode()
    assert 'inferwatch_model_gpu_info{gpu="2",host="node-1",model="fraud",uuid="GPU-2",version="v1"} 1.0' in text
    assert 'gpu="0",host="node-1"' not in text


def test_a_uuid_named_before_any_gpu_sample_is_found_once_one_comes() -> None:
    states: dict[str, GpuState] = {}
    engine = Engine(Settings(), gpu_states=states)
    engine.on_events([_event("GPU-7")])
    assert set(engine.models["fraud"].gpus) == {("node-1", None)}
    states[gpu_key("node-1", 7)] = GpuState(host="node-1", gpu="7", uuid="GPU-7", ts=1.7e9)
    engine.on_events([_event("GPU-7", ts=1.7e9 + 1)])
    assert ("node-1", "7") in engine.models["fraud"].gpus
