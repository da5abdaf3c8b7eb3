"""Through the real broker: a worker with a daily false-alert budget spreads it again when a model's
canary grows to full traffic, and its detectors take the new budget in place."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest

from streams.metrics import sample_sum
from streams.replay import replay
from tests.integration.service_helpers import metrics_text, run_settings, running_worker, wait_for

pytestmark = pytest.mark.integration


def _lines(times: np.ndarray, rng: np.random.Generator) -> list[bytes]:
    """Native JSON inference events of model canary-model at ``times`` (seconds after 1.7e9), no change."""
    return [
        json.dumps({"ts": 1.7e9 + float(t), "model": "canary-model", "model_version": "v2", "host": "gpu-node-1", "gpu": 0,
                    "latency_ms": float(rng.lognormal(3.0, 0.3)), "features": {"a": float(rng.normal()), "b": float(rng.normal())},
                    "prediction": "ok", "confidence": float(rng.beta(8, 2))}).encode()
        for t in times
    ]


def test_the_daily_budget_follows_a_canary_growing_to_full_traffic(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = run_settings(kafka_bootstrap, false_alerts_per_model_per_day=2.0)
    rng = np.random.default_rng(7)
    canary = np.cumsum(rng.exponential(1.0, 1200))  # 1 request/s for 20 minutes of event time
    full = canary[-1] + np.cumsum(rng.exponential(1 / 20, 48_000))  # then 20/s for 40 minutes
    lines = _lines(np.concatenate([canary, full]), rng)
    log = tmp_path / "worker.log"
    with running_worker(settings, log):
        asyncio.run(replay(lines, settings, speed=0))
        wait_for("every event", lambda: sample_sum(metrics_text(settings.web_port), "inferwatch_events_total") >= len(lines), timeout=120)
        exported = sample_sum(metrics_text(settings.web_port), "inferwatch_false_alarms_per_million")  # its one version
        spreads = re.findall(r"canary-model v2: 2 false alerts a day over (\d+) detector budgets at ([\d.e+]+) events/s(?: \(was ([\d.e+]+)\))?: "
                             r"([\d.e+-]+) false alarms per million", log.read_text())
    # The first 100 events' rate, then full traffic's, once two windows agree (one straddling the ramp may
    # take a step of its own):
    # 2 numeric + 2 missing + multivariate + 2 confidence + class + latency budgets.
    assert len(spreads) >= 2 and all(int(units) == 9 for units, *_ in spreads), spreads
    assert spreads[0][2] == "" and all(later[2] == earlier[1] for earlier, later in zip(spreads, spreads[1:]))
    first, now = float(spreads[0][1]), float(spreads[-1][1])
    assert first == pytest.approx(1.0, rel=0.3) and now == pytest.approx(20.0, rel=0.25)
    assert float(spreads[-1][3]) == pytest.approx(float(spreads[0][3]) * first / now, rel=0.02)
    assert exported == pytest.approx(float(spreads[-1][3]), rel=0.01)  # the budget in force, on /metrics
