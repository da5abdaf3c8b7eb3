"""Numenta Anomaly Benchmark scoring, exactly as ``NAB_SCORING.md`` describes.

Given, per file, the row timestamps, the detector's anomaly scores and the
labelled anomaly windows, this module computes every row's NAB weight, sweeps
every distinct score as the corpus-wide threshold (vectorised with numpy) and
reports the normalised score ``100 * (S - S_null) / (S_perfect - S_null)``.

It mirrors NAB's ``Sweeper``: the probationary rows (the first
``min(floor(0.15 * N), 750)``) are never scored; a window contributes the
weight of its best (earliest) detecting row, or ``-fnWeight``; each detecting
row outside every window adds its (negative) false-positive weight; a row
detects when ``score >= threshold``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Profile",
    "FileRows",
    "load_profiles",
    "probationary_length",
    "scaled_sigmoid",
    "window_indices",
    "row_weights",
    "sweep",
    "FileOutcome",
    "file_outcome",
    "file_score",
    "outcome_at",
    "score_corpus",
]

#: Row labels used by :func:`row_weights`: outside every window / probationary.
OUTSIDE = -1
PROBATION = -2


@dataclass(frozen=True)
class Profile:
    """One NAB cost profile."""

    name: str
    tp: float
    fp: float
    fn: float


def load_profiles(path: str | Path) -> list[Profile]:
    """Read NAB's ``profiles.json``."""
    raw = json.loads(Path(path).read_text())
    return [
        Profile(name, c["CostMatrix"]["tpWeight"], c["CostMatrix"]["fpWeight"], c["CostMatrix"]["fnWeight"])
        for name, c in raw.items()
    ]


def probationary_length(n_rows: int, percent: float = 0.15) -> int:
    """Rows at the start of a file that are never scored."""
    return int(min(math.floor(percent * n_rows), percent * 5000))


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """NAB's ``sigma(y) = 2 / (1 + exp(5y)) - 1``, and ``-1`` for ``y > 3``."""
    y = np.asarray(y, dtype=float)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, out)


def window_indices(timestamps: np.ndarray, windows: list[list[str]]) -> list[tuple[int, int]]:
    """Turn ``[start, end]`` timestamp windows into inclusive row-index pairs."""
    ts = np.asarray(timestamps, dtype="datetime64[us]")
    out = []
    for start, end in windows:
        left = int(np.searchsorted(ts, np.datetime64(start, "us"), side="left"))
        right = int(np.searchsorted(ts, np.datetime64(end, "us"), side="right")) - 1
        if right >= left:
            out.append((left, right))
    return out


def _past(rows: np.ndarray, prev_right: int, prev_width: int) -> np.ndarray:
    """Relative position of rows after a window: ``|r_prev - i| / (w_prev - 1)``."""
    if prev_width <= 1:  # NAB divides by zero here; such a row is simply far away
        return np.full(len(rows), np.inf)
    return np.abs(prev_right - rows) / float(prev_width - 1)


def row_weights(n_rows: int, windows: list[tuple[int, int]], profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Per-row NAB weight (as if the row detected) and label.

    The label is the window number, ``OUTSIDE`` or ``PROBATION``.
    """
    idx = np.arange(n_rows)
    weight = np.full(n_rows, -profile.fp)
    label = np.full(n_rows, OUTSIDE, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    prev_right, prev_width = None, None
    order = sorted(windows)
    for k, (left, right) in enumerate(order):
        width = right - left + 1
        # Outside rows between the previous window (or the start) and this one.
        gap = slice(0 if prev_right is None else prev_right + 1, left)
        if prev_right is not None:
            weight[gap] = profile.fp * scaled_sigmoid(_past(idx[gap], prev_right, prev_width))
        inside = slice(left, right + 1)
        weight[inside] = profile.tp * scaled_sigmoid(-(right - idx[inside] + 1) / width) / max_tp
        label[inside] = k
        prev_right, prev_width = right, width
    if prev_right is not None:
        tail = slice(prev_right + 1, n_rows)
        weight[tail] = profile.fp * scaled_sigmoid(_past(idx[tail], prev_right, prev_width))
    label[: probationary_length(n_rows)] = PROBATION
    return weight, label


@dataclass
class FileRows:
    """One scored file: its name, timestamps, scores and window row indices."""

    name: str
    timestamps: np.ndarray
    scores: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)


def _events(files: list[FileRows], profile: Profile) -> tuple[np.ndarray, np.ndarray, int]:
    """(score, change in corpus total when rows with this score start detecting) and window count."""
    scores, deltas = [], []
    n_windows = 0
    for f in files:
        s = np.asarray(f.scores, dtype=float)
        weight, label = row_weights(len(s), f.windows, profile)
        out = label == OUTSIDE
        scores.append(s[out])
        deltas.append(weight[out])
        for k in range(len(f.windows)):
            rows = np.flatnonzero(label == k)
            if len(rows) == 0:  # window entirely in the probationary period: not counted
                continue
            n_windows += 1
            order = rows[np.argsort(-s[rows], kind="stable")]
            best = np.maximum.accumulate(np.maximum(weight[order], -profile.fn))
            scores.append(s[order])
            deltas.append(np.diff(best, prepend=-profile.fn))
    return np.concatenate(scores), np.concatenate(deltas), n_windows


def sweep(files: list[FileRows], profile: Profile) -> tuple[np.ndarray, np.ndarray, int]:
    """Corpus total for every distinct score used as threshold.

    Returns ``(thresholds descending, raw totals, number of scored windows)``.
    """
    scores, deltas, n_windows = _events(files, profile)
    order = np.argsort(-scores, kind="stable")
    s, total = scores[order], np.cumsum(deltas[order]) - profile.fn * n_windows
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last row of each distinct score
    thresholds = np.r_[np.inf, s[last]]
    totals = np.r_[-profile.fn * n_windows, total[last]]
    return thresholds, totals, n_windows


@dataclass
class FileOutcome:
    """What one file's detecting rows at a threshold amount to, in NAB weights."""

    hits: list[float]  # the weight of each scored window's best detecting row
    missed: list[tuple[int, int]]  # scored windows (row indices) no row detects
    fp_rows: int  # detecting rows outside every window (probation excluded)
    fp_cost: float  # their summed (negative) weight

    def raw(self, profile: Profile) -> float:
        """The file's raw NAB score."""
        return sum(self.hits) - profile.fn * len(self.missed) + self.fp_cost


def file_outcome(f: FileRows, profile: Profile, threshold: float) -> FileOutcome:
    """Windows hit and missed, and false positives, of one file at a threshold."""
    weight, label = row_weights(len(f.scores), f.windows, profile)
    det = np.asarray(f.scores, dtype=float) >= threshold
    outside = det & (label == OUTSIDE)
    hits, missed = [], []
    for k, window in enumerate(f.windows):
        rows = np.flatnonzero(label == k)
        if len(rows) == 0:
            continue
        hit = rows[det[rows]]
        if len(hit):
            hits.append(float(weight[hit].max()))
        else:
            missed.append(window)
    return FileOutcome(hits, missed, int(outside.sum()), float(weight[outside].sum()))


def file_score(f: FileRows, profile: Profile, threshold: float) -> float:
    """Raw NAB score of one file at a given threshold."""
    return file_outcome(f, profile, threshold).raw(profile)


def outcome_at(files: list[FileRows], profile: Profile, threshold: float) -> dict:
    """The corpus at one threshold: normalised and raw score, windows hit, the weight their
    detections earned, the windows missed (file and timestamps) and the false positives."""
    return _summary([(f, file_outcome(f, profile, threshold)) for f in files], profile, threshold)


def _summary(outcomes: list[tuple[FileRows, FileOutcome]], profile: Profile, threshold: float) -> dict:
    """:func:`outcome_at` from each file's outcome at ``threshold``."""
    raw = sum(o.raw(profile) for _, o in outcomes)
    hit = sum(len(o.hits) for _, o in outcomes)
    missed = [{"file": f.name, "start": str(f.timestamps[a]), "end": str(f.timestamps[b])} for f, o in outcomes for a, b in o.missed]
    n_windows = hit + len(missed)
    s_null, s_perfect = -profile.fn * n_windows, profile.tp * n_windows
    return {
        "score": 100.0 * (raw - s_null) / (s_perfect - s_null) if n_windows else 0.0,
        "raw": raw,
        "threshold": float(threshold),
        "windows": n_windows,
        "windows_hit": hit,
        "true_positive_weight": sum(sum(o.hits) for _, o in outcomes),
        "false_positive_rows": sum(o.fp_rows for _, o in outcomes),
        "false_positive_cost": sum(o.fp_cost for _, o in outcomes),
        "missed_windows": missed,
    }


def score_corpus(files: list[FileRows], profiles: list[Profile]) -> dict[str, dict]:
    """Best threshold and normalised score for each profile, with what that threshold amounts to
    (:func:`outcome_at`) and each file's raw score."""
    result = {}
    for p in profiles:
        thresholds, totals, _ = sweep(files, p)
        best = float(thresholds[int(np.argmax(totals))])  # first (highest) threshold reaching the maximum
        outcomes = [(f, file_outcome(f, p, best)) for f in files]
        entry = _summary(outcomes, p, best)
        entry["per_file"] = {f.name: o.raw(p) for f, o in outcomes}
        result[p.name] = entry
    return result
