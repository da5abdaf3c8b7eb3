"""Detection of latency changes with known onsets: LatencyAnomaly next to river's detectors and the oracle CUSUM.

    python -m bench.latency_changes --json OUT [--seeds 20] [--quick]

Latency per request is lognormal around 20 ms (log-SD 0.3) on four backgrounds:
independent, wandering with load (AR(1) 0.9 noise of the same marginal spread), a
slow model's daily cycle of 288 requests and one of 5,000 (log amplitude 0.3).  At
``ONSET`` one change: the level up x1.3 (0.87 SD) or x2 (2.3 SD), the spread doubled
(log-SD 0.6), or a single request ten times slower; every change on a background
is applied to the same noise (seeded by the background's name).  Per scenario and detector:
delay (events from the onset up to and including the first alarm; median and p90
over the detected seeds), misses (no alarm within the horizon), and false alarms
in the ``PRE_FROM``..``ONSET`` stretch (after warm-up: a cycle of 5,000 is found
only after two cycles).  LatencyAnomaly runs at the default budget (1 false alarm
per million events); river's ADWIN and PageHinkley at their defaults on the log
latency; the oracle CUSUM knows the law before and after the change (independent
background only) and has the same false-alarm rate.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._output import emit, progress_log
from bench.drift_suite import run_river, summarise
from models.anomaly import LatencyAnomaly
from models.calibration import DEFAULT_BUDGET, gaussian_cusum_threshold

PRE_FROM, ONSET, HORIZON = 12_000, 20_000, 5_000
MEDIAN_MS, SIGMA = 20.0, 0.3
BACKGROUNDS = {"independent": (None, 0.0), "wandering_ar0.9": (None, 0.9), "cycle_288": (288, 0.0), "cycle_5000": (5000, 0.0)}
CHANGES = ("level_x1.3", "level_x2", "spread_x2", "spike_x10")

log = progress_log("latency_changes")


@dataclass(frozen=True)
class Scenario:
    background: str
    change: str

    @property
    def name(self) -> str:
        return f"{self.background}/{self.change}"


def log_latency(sc: Scenario, n: int, seeds: int) -> np.ndarray:
    """``(n, seeds)`` log latencies (ms) with the scenario's change at ``ONSET``."""
    period, phi = BACKGROUNDS[sc.background]
    rng = np.random.default_rng(zlib.crc32(sc.background.encode()))  # the same noise for every change on it
    e = rng.normal(size=(n, seeds))
    if phi:  # AR(1) of unit marginal variance
        z = np.empty_like(e)
        z[0] = e[0]
        for t in range(1, n):
            z[t] = phi * z[t - 1] + math.sqrt(1.0 - phi * phi) * e[t]
        e = z
    noise = SIGMA * e
    if sc.change == "spread_x2":
        noise[ONSET:] *= 2.0
    y = math.log(MEDIAN_MS) + noise
    if period:
        y += 0.3 * np.sin(2 * np.pi * np.arange(n) / period)[:, None]
    if sc.change.startswith("level_x"):
        y[ONSET:] += math.log(float(sc.change.removeprefix("level_x")))
    elif sc.change == "spike_x10":
        y[ONSET] += math.log(10.0)
    return y


def run_ours(y: np.ndarray) -> list[list[int]]:
    """LatencyAnomaly (default parameters) per seed, on the latencies in ms."""
    return [LatencyAnomaly(seed=0).update_many(np.exp(y[:, s])).tolist() for s in range(y.shape[1])]


def run_oracle(sc: Scenario, y: np.ndarray) -> tuple[list[list[int]], float] | None:
    """The CUSUM of the log-likelihood ratio of the laws before and after the change, from
    ``PRE_FROM``; None where it has no fixed post-change law (a cycle, wandering noise, a spike)."""
    if sc.background != "independent" or sc.change == "spike_x10":
        return None
    z = (y - math.log(MEDIAN_MS)) / SIGMA
    if sc.change.startswith("level_x"):
        delta = math.log(float(sc.change.removeprefix("level_x"))) / SIGMA
        h = gaussian_cusum_threshold(delta / 2, DEFAULT_BUDGET.alpha)
        inc = z - delta / 2
    else:  # N(0, 1) against N(0, 4) in z
        h = math.log(DEFAULT_BUDGET.arl)  # Lorden: ARL >= e^h (conservative)
        inc = -math.log(2.0) + z * z * (1.0 - 0.25) / 2.0
    alarms: list[list[int]] = []
    for s in range(y.shape[1]):
        c, out = 0.0, []
        for t in range(PRE_FROM, len(y)):
            c = max(0.0, c + inc[t, s])
            if c >= h:
                out.append(t)
                c = 0.0
        alarms.append(out)
    return alarms, h


def scenario_rows(sc: Scenario, seeds: int, horizon: int) -> list[dict[str, Any]]:
    y = log_latency(sc, ONSET + horizon, seeds)
    rows = []
    t0 = time.perf_counter()
    rows.append({"detector": "inferwatch.LatencyAnomaly", **summarise(run_ours(y), PRE_FROM, horizon, ONSET)})
    rows[-1]["seconds"] = round(time.perf_counter() - t0, 1)
    oracle = run_oracle(sc, y)
    if oracle is not None:
        rows.append({"detector": "oracle_cusum", "threshold": oracle[1], **summarise(oracle[0], PRE_FROM, horizon, ONSET)})
    for name in ("ADWIN", "PageHinkley"):
        rows.append({"detector": f"river.{name}", **summarise(run_river(name, y, 0, range(seeds)), PRE_FROM, horizon, ONSET)})
    for r in rows:
        r.update(scenario=sc.name, background=sc.background, change=sc.change)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="2 seeds, a shorter horizon (smoke test, about a minute)")
    args = ap.parse_args(argv)
    seeds, horizon = (2, 1000) if args.quick else (args.seeds, HORIZON)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    scenarios = [Scenario(b, c) for b in BACKGROUNDS for c in CHANGES]
    for i, sc in enumerate(scenarios, 1):
        log(f"{i}/{len(scenarios)} {sc.name} ({seeds} seeds)")
        rows += scenario_rows(sc, seeds, horizon)
    out = {
        "config": {"quick": args.quick, "seeds": seeds, "onset": ONSET, "false_alarms_counted_from": PRE_FROM,
                   "horizon": horizon, "median_ms": MEDIAN_MS, "log_sd": SIGMA, "budget_per_million": DEFAULT_BUDGET.per_million,
                   "river_input": "log latency", "delay": "events from the onset up to and including the first alarm, detected seeds only"},
        "scenarios": rows,
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    emit(out, None if args.json is None else Path(args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
