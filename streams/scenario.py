"""Built-in synthetic scenario: models, hosts and GPUs producing realistic traffic.

``baseline(seed, seconds, rate)`` yields ``ScenarioMessage``s in event-time
order: inference events for two models (numeric and categorical features,
confidence, class probabilities, lognormal latency) served from two hosts with
two GPUs each, one GPU sample per GPU per second, and — when ``malformed`` is
set — a sprinkling of broken messages that must end in the dead-letter topic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from streams.decoding import encode_gpu_sample, encode_inference_event
from streams.records import GpuSample, InferenceEvent

__all__ = ["HOSTS", "MODELS", "ScenarioMessage", "baseline"]

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


def _event(rng: random.Random, model: str, ts: float, i: int) -> InferenceEvent:
    host = HOSTS[i % len(HOSTS)]
    gpu = rng.randrange(GPUS_PER_HOST)
    features: dict[str, float | str | bool | None] = {f"x{j}": rng.gauss(0.0, 1.0) for j in range(6)}
    features["country"] = rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
    features["amount"] = None if rng.random() < 0.02 else round(rng.lognormvariate(3.0, 1.0), 2)
    logit = 1.5 + 0.8 * float(features["x0"]) + rng.gauss(0.0, 0.5)  # type: ignore[arg-type]
    p = 1.0 / (1.0 + math.exp(-logit))
    return InferenceEvent(
        ts=ts,
        model=model,
        model_version="v1",
        latency_ms=rng.lognormvariate(math.log(20.0 if model == MODELS[0] else 45.0), 0.35),
        request_id=f"{model}-{i}",
        host=host,
        gpu=gpu,
        gpu_uuid=f"GPU-{host}-{gpu}",
        features=features,
        prediction="positive" if p >= 0.5 else "negative",
        confidence=max(p, 1.0 - p),
        probabilities=[p, 1.0 - p],
    )


def _gpu(rng: random.Random, host: str, gpu: int, ts: float) -> GpuSample:
    util = min(100.0, max(0.0, rng.gauss(55.0, 8.0)))
    return GpuSample(
        ts=ts,
        host=host,
        gpu=gpu,
        uuid=f"GPU-{host}-{gpu}",
        fields={
            "DCGM_FI_DEV_GPU_UTIL": round(util, 1),
            "DCGM_FI_DEV_FB_USED": round(rng.gauss(30_000.0, 500.0)),
            "DCGM_FI_DEV_FB_FREE": round(rng.gauss(50_000.0, 500.0)),
            "DCGM_FI_DEV_GPU_TEMP": round(rng.gauss(62.0, 1.5), 1),
            "DCGM_FI_DEV_POWER_USAGE": round(150.0 + 2.0 * util + rng.gauss(0.0, 5.0), 1),
            "DCGM_FI_DEV_SM_CLOCK": 1410.0,
            "DCGM_FI_DEV_MEM_CLOCK": 1593.0,
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": 0.0,
            "DCGM_FI_DEV_XID_ERRORS": 0.0,
        },
    )


def baseline(
    seed: int = 0, seconds: int = 60, rate: float = 50.0, start: float = 1_700_000_000.0, malformed: bool = True
) -> Iterator[ScenarioMessage]:
    """Steady traffic: ``rate`` events/s per model for ``seconds``, GPU samples each second."""
    rng = random.Random(seed)
    per_second = max(1, round(rate))
    i = 0
    for second in range(seconds):
        t0 = start + second
        for host in HOSTS:
            for gpu in range(GPUS_PER_HOST):
                sample = _gpu(rng, host, gpu, t0)
                yield ScenarioMessage("gpu", host.encode(), encode_gpu_sample(sample), t0)
        for k in range(per_second):
            ts = t0 + k / per_second
            for model in MODELS:
                event = _event(rng, model, ts, i)
                i += 1
                yield ScenarioMessage("inference", model.encode(), encode_inference_event(event), ts)
        if malformed and second % 10 == 5:
            yield ScenarioMessage("inference", b"broken", _MALFORMED[(second // 10) % len(_MALFORMED)], t0)
