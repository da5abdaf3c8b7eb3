"""Run LatencyAnomaly (and river's HalfSpaceTrees baseline) over NAB and score it.

Usage::

    python -m bench.nab [--data DIR] [--out RESULTS_DIR] [--json OUT] [--no-baseline] [--seed N]

Every ``DIR/data/<category>/<file>.csv`` is read one row at a time; the
detector sees only the row's value (no timestamp, no labels) and emits an
anomaly score in [0, 1] before the next row is read.  Scores are written to
``RESULTS_DIR/<category>/<file>.csv`` (``timestamp,value,anomaly_score``).
Where ``DIR/labels/combined_windows.json`` exists the run is scored with
:mod:`bench.nab_scoring` for every profile in ``DIR/profiles.json``; so is
river's ``MinMaxScaler | HalfSpaceTrees`` at defaults (seed 42) as a sanity
check of the scorer (published: 27.5 standard on these files).

Each profile's entry gives, besides the score at NAB's chosen threshold, what
that threshold amounts to: windows hit and the weight their detections earned,
the windows missed (file and timestamps), and the detecting rows outside every
window with their cost.  A detector with a threshold of its own (LatencyAnomaly
alarms at 0.5, calibrated to its false-alarm budget) gets the same at that
threshold under ``at_own_threshold``: the operating point a user runs, where
NAB's chosen one may lie elsewhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bench.nab_scoring import FileRows, load_profiles, outcome_at, score_corpus, window_indices
from models.anomaly import LatencyAnomaly

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "nab"


def ours(seed: int = 0) -> Callable[[float], float]:
    """LatencyAnomaly at its product defaults; ``min_value=None`` only because NAB holds negative metrics."""
    det = LatencyAnomaly(min_value=None, seed=seed)

    def step(x: float) -> float:
        det.update(x)
        return det.score

    return step


def half_space_trees() -> Callable[[float], float]:
    """river's HalfSpaceTrees behind a MinMaxScaler, defaults (seed fixed for repeatability)."""
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)

    def step(x: float) -> float:
        row = {"value": x}
        s = model.score_one(row)
        model.learn_one(row)
        return float(s)

    return step


#: Published standard-profile scores on exactly these files (NAB_SCORING.md), for comparison.
PUBLISHED_STANDARD = {
    "ARTime": 80.4,
    "CAD OSE": 77.2,
    "Numenta HTM": 72.8,
    "earthgecko Skyline": 65.4,
    "Random Cut Forest": 52.4,
    "Windowed Gaussian": 50.9,
    "HalfSpaceTrees+MinMaxScaler": 27.5,
}

DETECTORS: dict[str, Callable[[], Callable[[float], float]]] = {
    "LatencyAnomaly": ours,
    "HalfSpaceTrees+MinMaxScaler": half_space_trees,
}


def read_file(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    body = rows[1:]
    return [r[0] for r in body], np.array([float(r[1]) for r in body])


def nab_files(data: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted((data / "data").glob("*/*.csv")):
        yield f"{path.parent.name}/{path.name}", path


def run_detector(factory: Callable[[], Callable[[float], float]], values: np.ndarray) -> np.ndarray:
    step = factory()
    return np.array([step(float(v)) for v in values])


def _report(name: str, profile: str, r: dict, which: str = "threshold") -> None:
    """Print one profile's score at a threshold and what it amounts to (see :func:`bench.nab_scoring.outcome_at`)."""
    print(
        f"{name:30s} {profile:20s} score {r['score']:6.1f}  {which} {r['threshold']:.6g}  windows hit {r['windows_hit']}/{r['windows']}, "
        f"{r['false_positive_rows']} detecting rows outside windows (cost {r['false_positive_cost']:.2f})",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "nab")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-baseline", action="store_true", help="skip the HalfSpaceTrees baseline")
    ap.add_argument("--seed", type=int, default=0, help="LatencyAnomaly's seed (its alarms no longer depend on it: the CUSUMs average over the tie-breaking draw)")
    args = ap.parse_args(argv)
    factories = dict(DETECTORS, LatencyAnomaly=lambda: ours(args.seed))
    ours_settings = LatencyAnomaly(min_value=None, seed=args.seed)  # reported: its parameters and its own threshold

    labels_path = args.data / "labels" / "combined_windows.json"
    labels = json.loads(labels_path.read_text()) if labels_path.exists() else None
    profiles = load_profiles(args.data / "profiles.json") if labels is not None else []
    names = [n for n in DETECTORS if not (args.no_baseline and n != "LatencyAnomaly")]
    corpus: dict[str, list[FileRows]] = {n: [] for n in names}
    seconds: dict[str, float] = {n: 0.0 for n in names}
    files = list(nab_files(args.data))
    for i, (key, path) in enumerate(files):
        timestamps, values = read_file(path)
        ts = np.array(timestamps, dtype="datetime64[us]")
        windows = window_indices(ts, labels.get(key, [])) if labels is not None else []
        for name in names:
            t0 = time.perf_counter()
            scores = run_detector(factories[name], values)
            seconds[name] += time.perf_counter() - t0
            corpus[name].append(FileRows(key, ts, scores, windows))
            if name == "LatencyAnomaly":
                out = args.out / key
                out.parent.mkdir(parents=True, exist_ok=True)
                with out.open("w", newline="") as fh:
                    w = csv.writer(fh)
                    w.writerow(["timestamp", "value", "anomaly_score"])
                    w.writerows(zip(timestamps, values.tolist(), scores.tolist()))
        print(f"[{i + 1}/{len(files)}] {key}: {len(values)} rows", file=sys.stderr)

    result: dict = {
        "data": str(args.data),
        "files": len(files),
        "settings": {"LatencyAnomaly": repr(ours_settings)},
        "published_standard": PUBLISHED_STANDARD,
        "detectors": {},
    }
    for name in names:
        entry: dict = {"seconds": round(seconds[name], 2)}
        if labels is not None:
            entry["profiles"] = score_corpus(corpus[name], profiles)
            for p, r in entry["profiles"].items():
                _report(name, p, r)
            if name == "LatencyAnomaly":  # the one detector here with a threshold of its own
                entry["at_own_threshold"] = {p.name: outcome_at(corpus[name], p, ours_settings.threshold) for p in profiles}
                for p, r in entry["at_own_threshold"].items():
                    _report(name, p, r, "own threshold")
        result["detectors"][name] = entry
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
