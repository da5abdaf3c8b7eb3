"""False alarms of every detector on realistic streams with no change, against its budget.

    python -m bench.false_alarms --json OUT [--events N] [--seeds S] [--budget B] [--only SUBSTR]
                                 [--latency-warmup W] [--gpu-warmup W] [--quick]

Calibration is derived on smooth, continuous streams; production streams are
quantised (whole milliseconds, integer utilisation), clipped, tied (a feature
that is one value 95% of the time, a ReLU), heavy-tailed, and hold rare values
that recur (1% of requests timing out at exactly 30 s, a GPU whose utilisation
drops to 0 for one sample now and then), imbalanced (a classifier predicting
the rare class 1% of the time), autocorrelated (latency that wanders
with load, lag-1 coefficient 0.5, 0.9 and 0.97), and cyclic (a slow model's
latency over days, a cycle of 288, 1,440 or 5,000 requests; a GPU's load over a
day of samples at one a minute).  Every stream here has no change, so a
detector at ``--budget`` false alarms per million events should raise about
``events * budget / 1e6`` on it, times the features watched where the budget
holds per feature.  The budget is raised from the default (1 per
million) to 100 so that a 100k-event run expects about 10 alarms and an
overshoot shows.  Per stream: alarms per seed, the expected count, their ratio,
and whether it stays within 3x (alarms cluster, so a Poisson bound would be too
tight), and the alarms per million events.  ``--budget 1 --events 12000 --seeds 20``
instead shows what the default budget leaves of a detector's first events, where its
references are still filling; ``--latency-warmup 2000`` and ``--gpu-warmup 1000`` give the
latency and GPU detectors the warm-up a worker gives them (``INFERWATCH_WARMUP_EVENTS``,
``INFERWATCH_GPU_WARMUP_SAMPLES``; the drift detectors here keep their own default warm-up).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._output import emit, progress_log
from models.anomaly import GpuAnomaly, LatencyAnomaly
from models.anomaly.dcgm import OBSERVATION_FIELDS
from models.base import Detector
from models.calibration import FalseAlarmBudget
from models.drift import CategoricalDrift, ConfidenceDrift, MissingRate, MultivariateDrift, NumericDrift, PredictionDrift

#: A stream within this many times its expected count of alarms passes.
ALLOWANCE = 3.0
CHUNK = 1000
_COL = {name: i for i, name in enumerate(OBSERVATION_FIELDS)}


@dataclass(frozen=True)
class Stream:
    """A stream with no change: ``make(n, rng)`` gives ``n`` observations for ``detector(budget=...)``.

    ``units``: how many times the budget applies (``NumericDrift``, ``MissingRate`` and
    ``ConfidenceDrift`` hold it per feature watched; the others per detector).
    """

    name: str
    detector: type[Detector]
    make: Callable[[int, np.random.Generator], Any]
    units: int = 1


log = progress_log("false_alarms")


# -- latency (one value per request, milliseconds) ---------------------------------


def _lognormal_ms(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.lognormal(np.log(20.0), 0.4, n)


def _ar1(n: int, rng: np.random.Generator, phi: float) -> np.ndarray:
    """A stationary AR(1) with unit innovations (its scan is sequential: the lag couples the draws)."""
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def _wandering_ms(phi: float) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Latency that wanders with load: ``exp(0.3 * AR(1)) + 5`` ms, lag-1 coefficient ``phi``."""
    return lambda n, rng: np.exp(0.3 * _ar1(n, rng, phi)) + 5.0


def cycle_ms(period: int, amplitude: float, sigma: float, phi: float = 0.0) -> Callable[[int, np.random.Generator], np.ndarray]:
    """A slow model's latency over days: lognormal (log-SD ``sigma``, noise AR(1) with coefficient
    ``phi``) around a cycle of log amplitude ``amplitude`` and ``period`` requests (one request a
    minute: 1,440; one every five minutes: 288)."""

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        noise = _ar1(n, rng, phi) * np.sqrt(1.0 - phi * phi) if phi else rng.normal(size=n)
        return 20.0 * np.exp(amplitude * np.sin(2 * np.pi * np.arange(n) / period) + sigma * noise)

    return make


def _whole_ms(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.round(rng.lognormal(1.5, 0.6, n))  # median 4.5 ms, whole milliseconds: many ties, some 0 ms


def _timeouts(n: int, rng: np.random.Generator) -> np.ndarray:
    x = _lognormal_ms(n, rng)
    x[rng.random(n) < 0.01] = 30_000.0  # the client's timeout
    return x


def _rare_level(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(n) < 0.002, 50.0, 5.0)  # a cache hit, or now and then a miss


# -- GPU (one DCGM sample per GPU per scrape) --------------------------------------


def _gpu(n: int, rng: np.random.Generator, util: np.ndarray | None = None) -> np.ndarray:
    """A busy GPU: integer utilisation ~92%, AR(1) temperature, whole watts, fixed clocks."""
    obs = np.full((n, len(OBSERVATION_FIELDS)), np.nan)
    obs[:, _COL["gpu_util"]] = np.round(rng.normal(92.0, 3.0, n)).clip(0, 100) if util is None else util
    obs[:, _COL["mem_used_fraction"]] = 0.7
    noise, temp = rng.normal(0.0, 1.0, n), np.empty(n)
    temp[0] = 0.0
    for t in range(1, n):
        temp[t] = 0.98 * temp[t - 1] + noise[t]
    obs[:, _COL["temperature"]] = np.round(70.0 + temp)
    obs[:, _COL["power"]] = np.round(rng.normal(300.0, 5.0, n))
    obs[:, _COL["sm_clock"]], obs[:, _COL["mem_clock"]] = 1410.0, 1215.0
    obs[:, [_COL["clocks_event_reasons"], _COL["xid"], _COL["ecc_uncorrectable"]]] = 0.0
    return obs


def _gpu_drops(n: int, rng: np.random.Generator) -> np.ndarray:
    util = np.round(rng.normal(92.0, 3.0, n)).clip(0, 100)
    util[rng.random(n) < 0.002] = 0.0  # single samples between kernels
    return _gpu(n, rng, util)


def _gpu_clock_steps(n: int, rng: np.random.Generator) -> np.ndarray:
    obs = _gpu(n, rng)
    obs[rng.random(n) < 0.002, _COL["sm_clock"]] = 1395.0  # one boost bin down now and then
    return obs


def _gpu_daily_load(n: int, rng: np.random.Generator) -> np.ndarray:
    """A GPU whose load follows a cycle of 1,440 samples (a day at one a minute): utilisation
    15-85%, power and temperature with it (temperature also wandering, AR(1) 0.98)."""
    load = 0.5 + 0.35 * np.sin(2 * np.pi * np.arange(n) / 1440)
    obs = _gpu(n, rng, np.round(np.clip(100.0 * load + rng.normal(0.0, 3.0, n), 0, 100)))
    obs[:, _COL["power"]] = np.round(80.0 + 250.0 * load + rng.normal(0.0, 5.0, n))
    obs[:, _COL["temperature"]] += np.round(30.0 * load) - 25.0  # 45-75 C with the load
    return obs


#: SM clocks of a real H200 serving requests (MHz), and how often each was read (tests/data/nvml_trace/h200_serving).
_SERVING_CLOCKS = np.array([1965.0, 1980.0, 1950.0, 1935.0, 1920.0, 1905.0, 1875.0, 1845.0, 1650.0])
_SERVING_CLOCK_SHARES = np.array([0.55, 0.23, 0.08, 0.05, 0.03, 0.02, 0.02, 0.01, 0.01])


def _gpu_serving(n: int, rng: np.random.Generator) -> np.ndarray:
    """A GPU serving requests of random size, its traffic following a cycle of 1,440 samples:
    utilisation uniform over 0.6-1.4 times 8-46 % from one sample to the next (as a real H200's),
    power with it, the SM clock jittering as the H200's did, temperature with the load."""
    load = 1.0 + 0.4 * np.sin(2 * np.pi * np.arange(n) / 1440)
    util = np.round(np.clip(load * rng.uniform(8.0, 46.0, n), 0, 100))
    obs = _gpu(n, rng, util)
    obs[:, _COL["power"]] = np.round(300.0 + 2.5 * util + rng.normal(0.0, 10.0, n))
    obs[:, _COL["sm_clock"]] = rng.choice(_SERVING_CLOCKS, n, p=_SERVING_CLOCK_SHARES / _SERVING_CLOCK_SHARES.sum())
    obs[:, _COL["mem_clock"]] = 3201.0
    obs[:, _COL["mem_used_fraction"]] = 0.12
    obs[:, _COL["temperature"]] = np.round(35.0 + 10.0 * load + rng.normal(0.0, 2.5, n))
    return obs


def _gpu_mostly_idle(n: int, rng: np.random.Generator) -> np.ndarray:
    util = np.where(rng.random(n) < 0.9, 0.0, np.round(rng.uniform(1.0, 100.0, n)))
    return _gpu(n, rng, util)


# -- input features, confidence, predictions ------------------------------------------


def _normal(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(n, 4))


def _lognormal(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.lognormal(0.0, 1.0, size=(n, 4))


def _mostly_one_value(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random((n, 4)) < 0.95, 1.0, rng.normal(size=(n, 4)))


def _relu(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.maximum(0.0, rng.normal(-0.5, 1.0, size=(n, 4)))  # about 70% exactly 0


def _counts(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.poisson(3.0, size=(n, 4)).astype(float)


def _mixed(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two correlated continuous features, a ReLU and a small count."""
    a = rng.normal(size=n)
    return np.column_stack([a, 0.8 * a + 0.6 * rng.normal(size=n), np.maximum(0.0, rng.normal(-0.5, 1.0, n)), rng.poisson(2.0, n)])


def _confidence(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.beta(8.0, 1.5, n)


def _confidence_saturated(n: int, rng: np.random.Generator) -> np.ndarray:
    c = rng.beta(8.0, 1.5, n)
    c[rng.random(n) < 0.3] = 1.0  # a float32 softmax rounds to exactly 1
    return c


def _confidence_two_decimals(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.round(rng.beta(8.0, 1.5, n), 2)


def _probabilities(n: int, rng: np.random.Generator) -> np.ndarray:
    z = rng.normal(0.0, 2.5, (n, 10))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32).astype(float)


def _zipf_categories(n: int, rng: np.random.Generator) -> list[str]:
    weights = 1.0 / np.arange(1, 201)
    return [f"c{i}" for i in rng.choice(200, n, p=weights / weights.sum())]  # more categories than tracked


def _rare_class(n: int, rng: np.random.Generator) -> list[str]:
    return np.where(rng.random(n) < 0.01, "fraud", "ok").tolist()  # an imbalanced binary classifier's predictions


def _missing(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(n, 4))
    x[rng.random((n, 4)) < 0.02] = np.nan
    return x


STREAMS = (
    Stream("latency_lognormal", LatencyAnomaly, _lognormal_ms),
    Stream("latency_whole_ms", LatencyAnomaly, _whole_ms),
    Stream("latency_timeouts_1pct_30s", LatencyAnomaly, _timeouts),
    Stream("latency_rare_level_0.2pct", LatencyAnomaly, _rare_level),
    Stream("latency_wandering_ar0.5", LatencyAnomaly, _wandering_ms(0.5)),
    Stream("latency_wandering_ar0.9", LatencyAnomaly, _wandering_ms(0.9)),
    Stream("latency_wandering_ar0.97", LatencyAnomaly, _wandering_ms(0.97)),  # nearly a random walk: over budget
    Stream("latency_cycle_288", LatencyAnomaly, cycle_ms(288, 0.3, 0.3)),
    Stream("latency_cycle_1440_small_noise", LatencyAnomaly, cycle_ms(1440, 1.0, 0.1)),
    Stream("latency_cycle_288_ar0.7", LatencyAnomaly, cycle_ms(288, 0.3, 0.3, phi=0.7)),  # the residual wanders: over budget
    Stream("latency_cycle_5000", LatencyAnomaly, cycle_ms(5000, 0.3, 0.3)),  # found in block medians after two cycles
    Stream("gpu_busy", GpuAnomaly, _gpu),
    Stream("gpu_util_drops_to_0_0.2pct", GpuAnomaly, _gpu_drops),
    Stream("gpu_clock_steps_0.2pct", GpuAnomaly, _gpu_clock_steps),
    Stream("gpu_mostly_idle", GpuAnomaly, _gpu_mostly_idle),
    Stream("gpu_daily_load", GpuAnomaly, _gpu_daily_load),
    Stream("gpu_serving", GpuAnomaly, _gpu_serving),  # bursty utilisation: the level view's block steps
    Stream("numeric_normal", NumericDrift, _normal, units=4),
    Stream("numeric_lognormal", NumericDrift, _lognormal, units=4),
    Stream("numeric_95pct_one_value", NumericDrift, _mostly_one_value, units=4),
    Stream("numeric_relu", NumericDrift, _relu, units=4),
    Stream("numeric_poisson_counts", NumericDrift, _counts, units=4),
    Stream("multivariate_mixed", MultivariateDrift, _mixed),
    Stream("missing_2pct", MissingRate, _missing, units=4),
    Stream("categorical_zipf_200", CategoricalDrift, _zipf_categories),
    Stream("prediction_binary_1pct", PredictionDrift, _rare_class),
    Stream("confidence_beta", ConfidenceDrift, _confidence),
    Stream("confidence_30pct_exactly_1", ConfidenceDrift, _confidence_saturated),
    Stream("confidence_two_decimals", ConfidenceDrift, _confidence_two_decimals),
    Stream("confidence_softmax_10", ConfidenceDrift, _probabilities, units=2),
)


def make_detector(stream: Stream, budget: FalseAlarmBudget, latency_warmup: int = 0, gpu_warmup: int = 0) -> Detector:
    """``stream``'s detector at ``budget``: a ``LatencyAnomaly`` with a warm-up of ``latency_warmup`` events,
    a ``GpuAnomaly`` with one of ``gpu_warmup`` samples; a drift detector keeps its default warm-up."""
    if stream.detector is LatencyAnomaly:
        return LatencyAnomaly(budget=budget, warmup=latency_warmup)
    if stream.detector is GpuAnomaly:
        return GpuAnomaly(budget=budget, warmup=gpu_warmup)
    return stream.detector(budget=budget)


def count_alarms(stream: Stream, events: int, seed: int, budget: FalseAlarmBudget, latency_warmup: int = 0, gpu_warmup: int = 0) -> int:
    """Alarms ``stream``'s detector (:func:`make_detector`) raises on ``events`` observations of seed
    ``seed``, fed in chunks."""
    xs = stream.make(events, np.random.default_rng(seed))
    det = make_detector(stream, budget, latency_warmup, gpu_warmup)
    return sum(int(det.update_many(xs[i : i + CHUNK]).size) for i in range(0, events, CHUNK))


def run(
    streams: tuple[Stream, ...], events: int, seeds: int, per_million: float, latency_warmup: int = 0, gpu_warmup: int = 0
) -> dict[str, Any]:
    budget = FalseAlarmBudget(per_million)
    rows = []
    for stream in streams:
        start = time.perf_counter()
        expected = stream.units * events * per_million / 1e6
        alarms = [count_alarms(stream, events, seed, budget, latency_warmup, gpu_warmup) for seed in range(seeds)]
        ratio = float(np.mean(alarms)) / expected
        rows.append(
            {
                "stream": stream.name,
                "detector": stream.detector.__name__,
                "alarms": alarms,
                "budget_units": stream.units,
                "expected_per_seed": expected,
                "ratio": round(ratio, 3),
                "per_million": round(float(np.mean(alarms)) / (stream.units * events) * 1e6, 1),
                "within_allowance": bool(max(alarms) <= ALLOWANCE * expected),
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        log(f"{stream.name}: {alarms} (expected {expected:g} each)")
    over = [r["stream"] for r in rows if not r["within_allowance"]]
    return {
        "config": {
            "events": events, "seeds": seeds, "budget_per_million": per_million, "allowance": ALLOWANCE,
            "latency_warmup": latency_warmup, "gpu_warmup": gpu_warmup,
        },
        "streams": rows,
        "summary": {"streams": len(rows), "within_allowance": len(rows) - len(over), "over_allowance": over},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.false_alarms", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the result JSON here")
    parser.add_argument("--events", type=int, default=100_000, help="events per stream and seed (default 100000)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per stream (default 2)")
    parser.add_argument("--budget", type=float, default=100.0, help="false alarms per million events (default 100)")
    parser.add_argument("--only", default="", help="run only the streams whose name contains this")
    parser.add_argument("--latency-warmup", type=int, default=0, metavar="W",
                        help="events the latency detector learns before it may alarm (default 0; a worker's: 2000)")
    parser.add_argument("--gpu-warmup", type=int, default=0, metavar="W",
                        help="samples the GPU detector learns before a statistical alarm (default 0; a worker's: 1000)")
    parser.add_argument("--quick", action="store_true", help="20000 events, one seed: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.seeds = 20_000, 1
    warmups_fit = all(0 <= w < args.events for w in (args.latency_warmup, args.gpu_warmup))
    if args.events < 10_000 or args.seeds < 1 or not 0 < args.budget < 1e6 or not warmups_fit:
        parser.error("need --events >= 10000 (past every warm-up), --seeds >= 1, 0 < --budget < 1e6, and each warm-up in [0, --events)")
    streams = tuple(s for s in STREAMS if args.only in s.name)
    if not streams:
        parser.error(f"no stream name contains {args.only!r}; streams: {', '.join(s.name for s in STREAMS)}")
    emit(run(streams, args.events, args.seeds, args.budget, args.latency_warmup, args.gpu_warmup), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
