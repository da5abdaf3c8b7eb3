"""Built-in synthetic scenario: models, hosts and GPUs, with incidents at known times.

``Scenario(...).messages()`` yields ``ScenarioMessage``s in event-time order:
inference events for two models (numeric and categorical features, confidence,
class probabilities, lognormal latency) — ``fraud-detector`` served from
``gpu-node-1``, ``churn-ranker`` from ``gpu-node-2``, two GPUs each — one GPU
sample per GPU per second, and, when ``malformed`` is set, a few broken
messages that must end in the dead-letter topic.  Incidents:

* ``InputDrift(model, feature, start, end, shift)``: the feature's mean moves by
  ``shift`` standard deviations;
* ``GpuContention(host, start, end, slowdown, gpu_lag)``: the host's GPUs run hot and
  saturated while the latency of the model it serves grows ``slowdown`` times (the
  GPUs from ``gpu_lag`` seconds after the latency).

``builtin()`` is the demo's scenario: warm-up, an input drift, a GPU-contention
latency incident, then a quiet period; ``baseline()`` has no incidents.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from streams.decoding import encode_gpu_sample, encode_inference_event
from streams.records import GpuSample, InferenceEvent

__all__ = ["HOSTS", "MODELS", "GpuContention", "InputDrift", "Scenario", "ScenarioMessage", "baseline", "builtin", "write_files"]

HOSTS = ("gpu-node-1", "gpu-node-2")
GPUS_PER_HOST = 2
MODELS = ("fraud-detector", "churn-ranker")
_COUNTRIES = ("DE", "FR", "US", "GB", "IN")
_COUNTRY_WEIGHTS = (0.3, 0.2, 0.3, 0.1, 0.1)
_MALFORMED = (
    b'{"ts": 1, "model": "fraud-detector", "latency_ms": -4}',
    b'{"model": "fraud-detector", "latency_ms": 3}',
    b"not json at all",
    b'{"ts": 1, "model": "churn-ranker", "latency_ms": NaN}',
)


@dataclass(frozen=True, slots=True)
class ScenarioMessage:
    """One message to produce: which input topic, its key, value and headers."""

    topic: Literal["inference", "gpu"]
    key: bytes
    value: bytes
    ts: float
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InputDrift:
    """Feature ``feature`` of ``model`` shifts by ``shift`` sd during [start, end) (scenario seconds)."""

    model: str
    feature: str
    start: float
    end: float
    shift: float = 1.0
    kind: str = "input_drift"


@dataclass(frozen=True, slots=True)
class GpuContention:
    """``host``'s model's latency grows ``slowdown`` times during [start, end), its GPUs saturate
    during [start + gpu_lag, end)."""

    host: str
    start: float
    end: float
    slowdown: float = 3.0
    kind: str = "correlated"
    gpu_lag: float = 0.0


Incident = InputDrift | GpuContention


def _active(incidents: tuple[Incident, ...], t: float) -> list[Incident]:
    return [i for i in incidents if i.start <= t < i.end]


def _event(rng: random.Random, model: str, ts: float, i: int, active: Sequence[Incident] = ()) -> InferenceEvent:
    host = HOSTS[MODELS.index(model) % len(HOSTS)]
    gpu = rng.randrange(GPUS_PER_HOST)
    features: dict[str, float | str | bool | None] = {f"x{j}": rng.gauss(0.0, 1.0) for j in range(6)}
    slowdown = 1.0
    for incident in active:
        if isinstance(incident, InputDrift) and incident.model == model:
            features[incident.feature] = float(features[incident.feature]) + incident.shift  # type: ignore[arg-type]
        elif isinstance(incident, GpuContention) and incident.host == host:
            slowdown = incident.slowdown
    features["country"] = rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
    features["amount"] = None if rng.random() < 0.02 else round(rng.lognormvariate(3.0, 1.0), 2)
    logit = 1.5 + 0.8 * float(features["x0"]) + rng.gauss(0.0, 0.5)  # type: ignore[arg-type]
    p = 1.0 / (1.0 + math.exp(-logit))
    return InferenceEvent(
        ts=ts,
        model=model,
        model_version="v1",
        latency_ms=slowdown * rng.lognormvariate(math.log(20.0 if model == MODELS[0] else 45.0), 0.35),
        request_id=f"{model}-{i}",
        host=host,
        gpu=gpu,
        gpu_uuid=f"GPU-{host}-{gpu}",
        features=features,
        prediction="positive" if p >= 0.5 else "negative",
        confidence=max(p, 1.0 - p),
        probabilities=[p, 1.0 - p],
    )


def _gpu(rng: random.Random, host: str, gpu: int, ts: float, contended: bool = False) -> GpuSample:
    util = min(100.0, max(0.0, rng.gauss(97.0, 1.5) if contended else rng.gauss(55.0, 8.0)))
    heat = 14.0 if contended else 0.0
    return GpuSample(
        ts=ts,
        host=host,
        gpu=gpu,
        uuid=f"GPU-{host}-{gpu}",
        fields={
            "DCGM_FI_DEV_GPU_UTIL": round(util, 1),
            "DCGM_FI_DEV_FB_USED": round(rng.gauss(30_000.0, 500.0)),
            "DCGM_FI_DEV_FB_FREE": round(rng.gauss(50_000.0, 500.0)),
            "DCGM_FI_DEV_GPU_TEMP": round(rng.gauss(62.0 + heat, 1.5), 1),
            "DCGM_FI_DEV_POWER_USAGE": round(150.0 + 2.0 * util + rng.gauss(0.0, 5.0), 1),
            "DCGM_FI_DEV_SM_CLOCK": 1245.0 if contended else 1410.0,
            "DCGM_FI_DEV_MEM_CLOCK": 1593.0,
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": 0.0,
            "DCGM_FI_DEV_XID_ERRORS": 0.0,
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": 0.0,
        },
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """A timeline: ``rate`` events/s per model for ``seconds``, with ``incidents``."""

    seconds: int = 60
    rate: float = 20.0
    incidents: tuple[Incident, ...] = ()
    seed: int = 0
    start: float = 1_700_000_000.0
    malformed: bool = True

    def messages(self) -> Iterator[ScenarioMessage]:
        """Every message in event-time order."""
        rng = random.Random(self.seed)
        per_second = max(1, round(self.rate))
        i = 0
        for second in range(self.seconds):
            t0 = self.start + second
            active = _active(self.incidents, second)
            for host in HOSTS:
                contended = any(isinstance(a, GpuContention) and a.host == host and second >= a.start + a.gpu_lag for a in active)
                for gpu in range(GPUS_PER_HOST):
                    sample = _gpu(rng, host, gpu, t0, contended)
                    yield ScenarioMessage("gpu", host.encode(), encode_gpu_sample(sample), t0)
            for k in range(per_second):
                ts = t0 + k / per_second
                for model in MODELS:
                    event = _event(rng, model, ts, i, active)
                    i += 1
                    yield ScenarioMessage("inference", model.encode(), encode_inference_event(event), ts)
            if self.malformed and second % 10 == 5:
                yield ScenarioMessage("inference", b"broken", _MALFORMED[(second // 10) % len(_MALFORMED)], t0)

    def at(self, second: float) -> float:
        """Epoch time of a scenario second."""
        return self.start + second


def baseline(seed: int = 0, seconds: int = 60, rate: float = 50.0, start: float = 1_700_000_000.0, malformed: bool = True) -> Iterator[ScenarioMessage]:
    """Steady traffic with no incident."""
    return Scenario(seconds=seconds, rate=rate, seed=seed, start=start, malformed=malformed).messages()


def builtin(rate: float = 20.0, seed: int = 0, warmup_seconds: int = 120) -> Scenario:
    """The demo scenario: warm-up, input drift, GPU contention, quiet period."""
    w = warmup_seconds
    return Scenario(
        seconds=w + 300,
        rate=rate,
        seed=seed,
        incidents=(
            InputDrift(model=MODELS[0], feature="x1", start=w, end=w + 60, shift=1.0),
            GpuContention(host=HOSTS[1], start=w + 120, end=w + 170, slowdown=3.0),
        ),
    )


def write_files(scenario: Scenario, out_dir: Path) -> list[Path]:
    """``inference.jsonl.gz``, ``gpu.jsonl.gz`` and ``incidents.json`` of a scenario."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"inference": out_dir / "inference.jsonl.gz", "gpu": out_dir / "gpu.jsonl.gz"}
    handles = {k: gzip.open(p, "wb") for k, p in paths.items()}
    try:
        for msg in scenario.messages():
            handles[msg.topic].write(msg.value + b"\n")
    finally:
        for handle in handles.values():
            handle.close()
    incidents = out_dir / "incidents.json"
    incidents.write_text(json.dumps(
        [{**asdict(i), "start_ts": scenario.at(i.start), "end_ts": scenario.at(i.end)} for i in scenario.incidents], indent=2
    ))
    return [*paths.values(), incidents]
