"""Detection quality of the drift detectors next to river's and the oracle CUSUM.

    python -m bench.drift_suite --json OUT [--seeds 20] [--quick]

Streams (``bench._streams``): a warm-up, a stretch without change, then a
known change (mean 0.25/0.5/1 sd, variance x1.5/x2, Gaussian -> Laplace or
bimodal at equal mean and variance, category share shift, an imbalanced
binary prediction whose rare class rises from 1 % to 3 %, missing-rate rise;
abrupt and ramped over 1,000 events), plus long streams without change for the
false-alarm rate (the rare-class stream among them: a chi-squared test of few
expected values overshoots there).  Per scenario and detector: detection delay (events after the
onset up to and including the alarm; median and p90 over detected seeds),
misses (no alarm within the horizon), false alarms between the end of the
warm-up and the onset.  Seeds run as parallel features of one vectorised
detector where the detector allows it.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
from river import drift as river_drift

from bench._output import progress_log
from bench._stats import poisson_upper
from bench._streams import CATEGORICAL_FAMILIES, SCENARIOS, Scenario, generate, oracle_llr
from models.calibration import DEFAULT_BUDGET, gaussian_cusum_threshold
from models.drift import CategoricalDrift, MissingRate, NumericDrift

WARMUP, PRE, HORIZON, RAMP = 5000, 5000, 5000, 1000
ONSET = WARMUP + PRE
RIVER = {"ADWIN": river_drift.ADWIN, "PageHinkley": river_drift.PageHinkley, "KSWIN": river_drift.KSWIN}


log = progress_log("drift_suite")


# -- detectors: each returns one array of alarm times per seed ------------------
def run_ours(sc: Scenario, xs: np.ndarray, state: dict[str, Any] | None = None) -> list[list[int]]:
    """Our default detector for the scenario's family; seeds are features (numeric, missing)."""
    alarms: list[list[int]] = [[] for _ in range(xs.shape[1])]
    offset = 0 if state is None else state["offset"]
    if sc.family in CATEGORICAL_FAMILIES:
        dets = state["dets"] if state else [CategoricalDrift() for _ in range(xs.shape[1])]
        for s, det in enumerate(dets):
            for i in det.update_many(xs[:, s].tolist()):
                alarms[s].append(offset + int(i))
    else:
        det = state["det"] if state else (NumericDrift() if sc.family == "numeric" else MissingRate())
        rows = det.update_many(xs)
        for i, feats in zip(rows, det.fired_features, strict=True):
            for f in feats:
                alarms[int(f)].append(offset + int(i))
    return alarms


def oracle_threshold(sc: Scenario) -> tuple[float, str]:
    if sc.kind == "mean":
        return gaussian_cusum_threshold(sc.size / 2, DEFAULT_BUDGET.alpha), "siegmund"
    return math.log(DEFAULT_BUDGET.arl), "ln(ARL): Lorden bound ARL >= e^h, conservative"


def run_oracle(sc: Scenario, xs: np.ndarray, start: int) -> list[list[int]]:
    """LLR CUSUM that knows both laws (final post-change law for ramps); monitors from ``start``."""
    h, _ = oracle_threshold(sc)
    inc = oracle_llr(sc, xs)
    if sc.kind == "mean":
        inc = inc / sc.size  # z-form: x - delta / 2, threshold from Siegmund
    s = np.zeros(xs.shape[1])
    alarms: list[list[int]] = [[] for _ in range(xs.shape[1])]
    for t in range(start, len(xs)):
        s = np.maximum(0.0, s + inc[t])
        hit = s >= h
        if hit.any():
            for f in np.flatnonzero(hit):
                alarms[f].append(t)
            s[hit] = 0.0
    return alarms


def run_river(name: str, xs: np.ndarray, start: int, seeds: range) -> list[list[int]]:
    """One river detector per seed, fed from ``start``; NaN fed as a missing indicator."""
    alarms: list[list[int]] = []
    for s in seeds:
        det = RIVER[name](seed=s) if name == "KSWIN" else RIVER[name]()
        col = xs[start:, s]
        out = []
        for i, v in enumerate(col.tolist()):
            det.update(v)
            if det.drift_detected:
                out.append(start + i)
        alarms.append(out)
    return alarms


# -- metrics ---------------------------------------------------------------------
def summarise(alarms: list[list[int]], pre_from: int, horizon: int, onset: int = ONSET) -> dict[str, Any]:
    """Delays (events from ``onset`` up to and including the first alarm within ``horizon``), misses,
    and false alarms from ``pre_from`` to ``onset``, over the seeds' alarm times."""
    delays, false = [], 0
    for times in alarms:
        t = np.asarray(times, dtype=np.int64)
        false += int(np.sum((t >= pre_from) & (t < onset)))
        after = t[(t >= onset) & (t < onset + horizon)]
        if after.size:
            delays.append(int(after[0] - onset + 1))
    d = np.asarray(delays, dtype=float)
    return {
        "seeds": len(alarms),
        "detected": int(d.size),
        "missed": len(alarms) - int(d.size),
        "median_delay": float(np.median(d)) if d.size else None,
        "p90_delay": float(np.quantile(d, 0.9)) if d.size else None,
        "mean_delay": float(d.mean()) if d.size else None,
        "false_alarms_before_onset": false,
        "pre_onset_events_per_seed": onset - pre_from,
        "horizon": horizon,
    }


def scenario_rows(sc: Scenario, seeds: int, kswin_pre: int, kswin_post: int) -> list[dict[str, Any]]:
    xs = generate(sc, ONSET + HORIZON, ONSET, seeds, RAMP)
    if sc.family in CATEGORICAL_FAMILIES:
        xs_river = xs
    elif sc.family == "missing":
        xs_river = np.isnan(xs).astype(float)
    else:
        xs_river = xs
    rows = []
    t0 = time.perf_counter()
    rows.append({"detector": "inferwatch", **summarise(run_ours(sc, xs), WARMUP, HORIZON)})
    rows[-1]["seconds"] = round(time.perf_counter() - t0, 3)
    h, how = oracle_threshold(sc)
    rows.append({"detector": "oracle_cusum", "threshold": h, "threshold_method": how,
                 **summarise(run_oracle(sc, xs, WARMUP), WARMUP, HORIZON)})
    for name in ("ADWIN", "PageHinkley"):
        rows.append({"detector": f"river.{name}", **summarise(run_river(name, xs_river, 0, range(seeds)), WARMUP, HORIZON)})
    if kswin_post:
        start = ONSET - kswin_pre
        rows.append({"detector": "river.KSWIN", "note": f"fed events [onset-{kswin_pre}, onset+{kswin_post}) only",
                     **summarise(run_river("KSWIN", xs_river[: ONSET + kswin_post], start, range(seeds)), start, kswin_post)})
    for r in rows:
        r.update(scenario=sc.name, family=sc.family, change=sc.kind, size=sc.size, gradual=sc.gradual)
    return rows


def ours_quiet(family: str, streams: int, events: int, base_seed: int) -> tuple[int, int, int]:
    """Our default detector on ``streams`` no-change streams of ``events``: (alarms, oracle alarms, events monitored)."""
    sc = Scenario(f"no_change_{family}", family, "none")
    state: dict[str, Any] = {"offset": 0}
    if family in CATEGORICAL_FAMILIES:
        state["dets"] = [CategoricalDrift() for _ in range(streams)]
    else:
        state["det"] = NumericDrift() if family == "numeric" else MissingRate()
    count, oracle_count = 0, 0
    oracle_h = gaussian_cusum_threshold(0.25, DEFAULT_BUDGET.alpha)
    s_or = np.zeros(streams)
    block = max(1, 2_000_000 // streams)
    for b, start in enumerate(range(0, events, block)):
        xs = generate(sc, min(block, events - start), 10**12, streams, base_seed=base_seed + b)
        state["offset"] = start
        count += sum(len(a) for a in run_ours(sc, xs, state))
        if family == "numeric":  # oracle for a 0.5 sd upward shift, monitoring after the warm-up
            for x in xs[max(0, WARMUP - start) :]:
                s_or = np.maximum(0.0, s_or + x - 0.25)
                hit = s_or >= oracle_h
                if hit.any():
                    oracle_count += int(hit.sum())
                    s_or[hit] = 0.0
        if b % 5 == 0:
            log(f"  no-change {family}: {start + len(xs):,}/{events:,} events x {streams} streams, {count} alarms so far")
    return count, oracle_count, streams * (events - WARMUP)


def no_change(family: str, seeds: int, events: int, fleet: tuple[int, int], river_events: int, kswin_events: int) -> list[dict[str, Any]]:
    """False alarms per million events on streams without change.

    Ours twice: ``seeds`` streams of ``events`` (long run), and a fleet of many
    short streams (many independent warm-ups, which is what the budget averages over).
    """
    rows = []
    total, total_events = 0, 0
    for label, (streams, n, base) in {"long": (seeds, events, 1000), "fleet": (*fleet, 50_000)}.items():
        t0 = time.perf_counter()
        c, oc, m = ours_quiet(family, streams, n, base)
        total, total_events = total + c, total_events + m
        rows.append({"detector": "inferwatch", "run": label, "events": m, "false_alarms": c, "per_million": c / m * 1e6,
                     "upper95_per_million": poisson_upper(c) / m * 1e6,
                     "note": f"{streams} streams x {n:,} events, the first {WARMUP} of each are warm-up",
                     "seconds": round(time.perf_counter() - t0, 1)})
        if family == "numeric":
            rows.append({"detector": "oracle_cusum(0.5sd)", "run": label, "events": m, "false_alarms": oc,
                         "per_million": oc / m * 1e6})
    rows.append({"detector": "inferwatch", "run": "pooled", "events": total_events, "false_alarms": total,
                 "per_million": total / total_events * 1e6,
                 "upper95_per_million": poisson_upper(total) / total_events * 1e6})
    sc = Scenario(f"no_change_{family}", family, "none")
    xs = generate(sc, max(river_events, kswin_events), 10**12, seeds, base_seed=7)
    if family == "missing":
        xs = np.isnan(xs).astype(float)
    for name, n, k in (("ADWIN", river_events, seeds), ("PageHinkley", river_events, seeds), ("KSWIN", kswin_events, 2)):
        t0 = time.perf_counter()
        c = sum(len(a) for a in run_river(name, xs[:n], 0, range(min(k, seeds))))
        m = n * min(k, seeds)
        rows.append({"detector": f"river.{name}", "run": "long", "events": m, "false_alarms": c, "per_million": c / m * 1e6,
                     "note": f"{min(k, seeds)} streams x {n:,} events", "seconds": round(time.perf_counter() - t0, 1)})
    for r in rows:
        r["stream"] = family
    return rows


def targets(scen: list[dict[str, Any]], quiet: list[dict[str, Any]]) -> dict[str, Any]:
    ours = {r["stream"]: r for r in quiet if r["detector"] == "inferwatch" and r["run"] == "pooled"}
    t1 = {k: {"per_million": v["per_million"], "upper95_per_million": v["upper95_per_million"]} for k, v in ours.items()}
    by = {(r["scenario"], r["detector"]): r for r in scen}
    t2 = {}
    for r in scen:
        if r["change"] == "mean" and r["detector"] == "inferwatch":  # abrupt and gradual
            o = by[(r["scenario"], "oracle_cusum")]
            ratio = (r["median_delay"] / o["median_delay"]) if r["median_delay"] and o["median_delay"] else None
            t2[r["scenario"]] = {"ours": r["median_delay"], "oracle": o["median_delay"], "ratio": ratio,
                                 "ours_missed": r["missed"]}
    return {
        "target_1": {"description": "at most 1 false alarm per million events at the default setting "
                     "(no-change streams, long and fleet runs pooled)",
                     "values": t1, "met": all(v["per_million"] <= 1.0 for v in t1.values())},
        "target_2": {"description": "median delay within 2x of the oracle CUSUM on every mean shift, abrupt and gradual",
                     "values": t2, "met": all(v["ratio"] is not None and v["ratio"] <= 2.0 and v["ours_missed"] == 0
                                              for v in t2.values())},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="few seeds, short streams (smoke test, < 1 minute)")
    args = ap.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    events = 60_000 if args.quick else 1_000_000
    fleet = (20, 20_000) if args.quick else (200, 100_000)
    river_events = 10_000 if args.quick else 100_000
    kswin_events, kswin_pre, kswin_post = (1000, 100, 200) if args.quick else (10_000, 500, 1000)
    t0 = time.perf_counter()
    scen: list[dict[str, Any]] = []
    for sc in SCENARIOS:
        log(f"scenario {sc.name} ({seeds} seeds)")
        scen += scenario_rows(sc, seeds, kswin_pre, kswin_post)
    quiet: list[dict[str, Any]] = []
    for family in ("numeric", "categorical", "rare_class", "missing"):
        log(f"no-change {family}")
        quiet += no_change(family, seeds, events, fleet, river_events, kswin_events)
    out = {
        "config": {"quick": args.quick, "seeds": seeds, "warmup": WARMUP, "pre_change_events": PRE, "onset": ONSET,
                   "horizon": HORIZON, "ramp": RAMP, "no_change_events_per_seed": events,
                   "no_change_fleet": {"streams": fleet[0], "events_per_stream": fleet[1]},
                   "river_no_change_events_per_seed": river_events, "kswin_no_change_events_per_seed": kswin_events,
                   "kswin_scenario_window": [ONSET - kswin_pre, ONSET + kswin_post],
                   "delay": "events from the onset up to and including the first alarm, detected seeds only",
                   "river_inputs": "numeric: the value; categorical: the category code 0..4; rare class: 0 or 1; missing: the 0/1 indicator",
                   "budget_per_million": DEFAULT_BUDGET.per_million},
        "scenarios": scen,
        "no_change": quiet,
    }
    out["targets"] = targets(scen, quiet)
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)
    log(f"wrote {args.json} in {out['elapsed_s']} s; target 1 met: {out['targets']['target_1']['met']}, "
        f"target 2 met: {out['targets']['target_2']['met']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
