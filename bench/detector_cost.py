"""Per-event cost of the full drift detector set for a 64-feature model, next to river.

    python -m bench.detector_cost --json OUT [--quick]

Ours: ``NumericDrift`` (64 features) + ``MissingRate`` (64) +
``MultivariateDrift`` (64) + ``ConfidenceDrift`` + ``PredictionDrift``, plus
``models.anomaly.LatencyAnomaly`` when that package exposes it; one event at
a time and through ``update_many`` in batches of 100 and 1,000.  River, one
event at a time as a user would wire it: 64 x ADWIN + 64 x PageHinkley (the
same job, means only), and 64 x KSWIN measured over fewer events.  All after
the warm-up, in one run, as microseconds per event (best of interleaved
rounds) and ratios, with a breakdown per detector (single runs) that also gives
each detector's snapshot size (what the worker writes to its changelog).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from river import drift as river_drift

from bench._output import progress_log
from models.drift import ConfidenceDrift, MissingRate, MultivariateDrift, NumericDrift, PredictionDrift

F = 64
#: Each timing is the best of this many interleaved rounds (the machine is shared).
REPEATS = 3


log = progress_log("detector_cost")


def make_events(n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, F))
    x[rng.random(x.shape) < 0.01] = np.nan
    logits = rng.normal(size=(n, 5)) * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return {"x": x, "probs": probs, "pred": probs.argmax(1).tolist(), "latency": rng.lognormal(np.log(25), 0.3, n)}


def latency_factory() -> tuple[Callable[[], Any] | None, str]:
    try:
        import models.anomaly as anomaly
    except ModuleNotFoundError:
        return None, "models.anomaly is not available: latency detector not measured"
    if "LatencyAnomaly" not in getattr(anomaly, "__all__", ()):
        return None, "models.anomaly does not export LatencyAnomaly: latency detector not measured"
    return anomaly.LatencyAnomaly, "models.anomaly.LatencyAnomaly (default parameters) included"


class OurSet:
    """The detectors one 64-feature model gets, fed the same event."""

    def __init__(self, latency: Callable[[], Any] | None) -> None:
        self.numeric, self.missing, self.multi = NumericDrift(), MissingRate(), MultivariateDrift()
        self.conf, self.pred = ConfidenceDrift(), PredictionDrift()
        self.latency = latency() if latency else None

    def one(self, ev: dict[str, Any], i: int) -> None:
        x = ev["x"][i]
        self.numeric.update(x)
        self.missing.update(x)
        self.multi.update(x)
        self.conf.update(ev["probs"][i])
        self.pred.update(ev["pred"][i])
        if self.latency is not None:
            self.latency.update(float(ev["latency"][i]))

    def many(self, ev: dict[str, Any], a: int, b: int) -> None:
        x = ev["x"][a:b]
        self.numeric.update_many(x)
        self.missing.update_many(x)
        self.multi.update_many(x)
        self.conf.update_many(ev["probs"][a:b])
        self.pred.update_many(ev["pred"][a:b])
        if self.latency is not None:
            self.latency.update_many(ev["latency"][a:b])


def time_ours(latency: Callable[[], Any] | None, warm: dict[str, Any], ev: dict[str, Any], batch: int, n: int) -> float:
    det = OurSet(latency)
    det.many(warm, 0, len(warm["x"]))
    t0 = time.perf_counter()
    if batch == 1:
        for i in range(n):
            det.one(ev, i)
    else:
        for a in range(0, n, batch):
            det.many(ev, a, min(n, a + batch))
    return (time.perf_counter() - t0) / n * 1e6


def breakdown(
    latency: Callable[[], Any] | None, warm: dict[str, Any], ev: dict[str, Any], n_one: int, n_many: int
) -> dict[str, Any]:
    """Each detector of the set alone: one event at a time, and in batches of 1,000; then its
    snapshot's size (bytes, and zlib level 1 as the worker's changelog records)."""
    det = OurSet(latency)
    det.many(warm, 0, len(warm["x"]))
    parts = {
        "NumericDrift": (det.numeric, ev["x"]),
        "MissingRate": (det.missing, ev["x"]),
        "MultivariateDrift": (det.multi, ev["x"]),
        "ConfidenceDrift": (det.conf, ev["probs"]),
        "PredictionDrift": (det.pred, ev["pred"]),
    }
    if det.latency is not None:
        parts["LatencyAnomaly"] = (det.latency, ev["latency"])
    out = {}
    for name, (d, xs) in parts.items():
        t0 = time.perf_counter()
        for i in range(n_one):
            d.update(xs[i])
        one = (time.perf_counter() - t0) / n_one * 1e6
        t0 = time.perf_counter()
        for a in range(0, n_many, 1000):
            d.update_many(xs[a : a + 1000])
        out[name] = {"per_event_us": one, "update_many_1000_us": (time.perf_counter() - t0) / n_many * 1e6}
        data = d.snapshot()
        out[name].update(snapshot_bytes=len(data), snapshot_bytes_zlib=len(zlib.compress(data, 1)))
    return out


def time_river(kinds: list[type], ev: dict[str, Any], n: int, warm: int) -> float:
    dets = [[k() for _ in range(F)] for k in kinds]
    x = np.nan_to_num(ev["x"]).tolist()
    for row in x[:warm]:
        for group in dets:
            for d, v in zip(group, row, strict=True):
                d.update(v)
    t0 = time.perf_counter()
    for row in x[warm : warm + n]:
        for group in dets:
            for d, v in zip(group, row, strict=True):
                d.update(v)
    return (time.perf_counter() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n_one, n_many, n_river, n_kswin = (500, 2000, 500, 10) if args.quick else (3000, 20_000, 5000, 100)
    latency, note = latency_factory()
    warm = make_events(5000, seed=1)
    ev = make_events(max(n_many, n_river + 1000), seed=2)
    res: dict[str, float] = {}
    jobs: dict[str, Callable[[], float]] = {
        "ours_per_event_us": lambda: time_ours(latency, warm, ev, 1, n_one),
        "ours_update_many_100_us": lambda: time_ours(latency, warm, ev, 100, n_many),
        "ours_update_many_1000_us": lambda: time_ours(latency, warm, ev, 1000, n_many),
        "river_adwin_ph_us": lambda: time_river([river_drift.ADWIN, river_drift.PageHinkley], ev, n_river, 1000),
    }
    for r in range(REPEATS):  # rounds interleave ours and river, so both see the same machine load
        for name, job in jobs.items():
            log(f"round {r + 1}/{REPEATS}: {name}")
            res[name] = min(res.get(name, float("inf")), job())
    log("breakdown per detector")
    res_parts = breakdown(latency, warm, ev, n_one, n_many)
    log("river 64 x KSWIN")
    res["river_kswin_us"] = time_river([river_drift.KSWIN], ev, n_kswin, 100)
    out = {
        "features": F,
        "ours_set": ["NumericDrift(64)", "MissingRate(64)", "MultivariateDrift(64)", "ConfidenceDrift", "PredictionDrift"]
        + (["LatencyAnomaly"] if latency else []),
        "latency_detector": note,
        "repeats": REPEATS,
        "events_measured": {
            "ours_per_event": n_one,
            "ours_update_many": n_many,
            "river_adwin_ph": n_river,
            "river_kswin": n_kswin,
        },
        "us_per_event": res,
        "us_per_event_by_detector": res_parts,
        "snapshot_bytes_set": {
            key: sum(part[key] for part in res_parts.values()) for key in ("snapshot_bytes", "snapshot_bytes_zlib")
        },
        "events_per_second": {k: 1e6 / v for k, v in res.items()},
        "ratios": {
            "river_adwin_ph_over_ours_per_event": res["river_adwin_ph_us"] / res["ours_per_event_us"],
            "river_adwin_ph_over_ours_update_many_1000": res["river_adwin_ph_us"] / res["ours_update_many_1000_us"],
            "river_kswin_over_ours_update_many_1000": res["river_kswin_us"] / res["ours_update_many_1000_us"],
        },
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "note": "all after warm-up; river detectors fed NaN as 0 (river has no missing values); "
        "river does not cover missing rate, multivariate, categorical or confidence detection; "
        "the machine (2 cores) was shared with other benchmarks while this ran",
    }
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)
    log(json.dumps(out["us_per_event"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
