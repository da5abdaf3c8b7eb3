"""NAB scorer on tiny hand-made files, with the expected scores worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.nab_scoring import (
    FileRows,
    Profile,
    file_outcome,
    file_score,
    outcome_at,
    probationary_length,
    row_weights,
    score_corpus,
    sweep,
    window_indices,
)

STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)


def sigma(y: float) -> float:
    return -1.0 if y > 3 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def minutes(n: int) -> np.ndarray:
    return np.datetime64("2020-01-01T00:00", "us") + np.arange(n) * np.timedelta64(1, "m")


def file_a() -> FileRows:
    """10 rows (1 probationary), window rows 4..6; detections before, in and after it."""
    scores = np.zeros(10)
    scores[2], scores[5], scores[8] = 0.9, 0.8, 0.7
    ts = minutes(10)
    return FileRows("cat/a.csv", ts, scores, window_indices(ts, [["2020-01-01 00:04:00.000000", "2020-01-01 00:06:00"]]))


def file_b() -> FileRows:
    """20 rows (3 probationary), its only window (rows 1..2) inside the probation."""
    scores = np.zeros(20)
    scores[10] = 0.95
    return FileRows("cat/b.csv", minutes(20), scores, [(1, 2)])


def test_probationary_length():
    assert probationary_length(10) == 1
    assert probationary_length(20) == 3
    assert probationary_length(4032) == 604
    assert probationary_length(15902) == 750


def test_window_indices_from_timestamps():
    assert file_a().windows == [(4, 6)]


def test_row_weights_by_hand():
    weight, label = row_weights(10, [(4, 6)], STANDARD)
    max_tp = sigma(-1.0)  # 0.986614
    expected = [
        -0.11, -0.11, -0.11, -0.11,  # before the window (row 0 is probationary)
        1.0, sigma(-2 / 3) / max_tp, sigma(-1 / 3) / max_tp,  # 1, 0.943743, 0.691518
        0.11 * sigma(0.5), 0.11 * sigma(1.0), 0.11 * sigma(1.5),  # -0.093311, -0.108528, -0.109878
    ]
    np.testing.assert_allclose(weight, expected, rtol=1e-12)
    np.testing.assert_allclose(weight[[5, 6, 7, 8, 9]], [0.943743, 0.691518, -0.093311, -0.108528, -0.109878], atol=1e-6)
    assert label.tolist() == [-2, -1, -1, -1, 0, 0, 0, -1, -1, -1]


def test_file_score_by_hand():
    a = file_a()
    assert file_score(a, STANDARD, 0.9) == pytest.approx(-1.0 - 0.11)  # FP, window missed
    assert file_score(a, STANDARD, 0.8) == pytest.approx(0.943743 - 0.11, abs=1e-6)
    assert file_score(a, STANDARD, 0.7) == pytest.approx(0.943743 - 0.11 - 0.108528, abs=1e-6)
    # everything detects: earliest window row counts 1.0; rows 1-3 and 7-9 are FPs
    assert file_score(a, STANDARD, 0.0) == pytest.approx(1.0 - 0.33 - 0.093311 - 0.108528 - 0.109878, abs=1e-6)


def test_file_outcome_by_hand():
    a = file_a()
    missed = file_outcome(a, STANDARD, 0.9)  # only row 2 detects, before the window
    assert (missed.hits, missed.missed, missed.fp_rows) == ([], [(4, 6)], 1)
    assert missed.fp_cost == pytest.approx(-0.11)
    hit = file_outcome(a, STANDARD, 0.7)  # rows 2, 5 and 8
    assert hit.hits == [pytest.approx(0.943743, abs=1e-6)] and hit.missed == []
    assert (hit.fp_rows, hit.fp_cost) == (2, pytest.approx(-0.11 - 0.108528, abs=1e-6))
    assert hit.raw(STANDARD) == pytest.approx(file_score(a, STANDARD, 0.7))
    assert file_outcome(file_b(), STANDARD, 0.0).hits == []  # a probationary window is neither hit nor missed
    assert file_outcome(file_b(), STANDARD, 0.0).missed == []


def test_outcome_at_a_threshold_by_hand():
    files = [file_a(), file_b()]
    at_08 = outcome_at(files, STANDARD, 0.8)
    assert (at_08["windows"], at_08["windows_hit"], at_08["missed_windows"]) == (1, 1, [])
    assert at_08["true_positive_weight"] == pytest.approx(0.943743, abs=1e-6)
    assert (at_08["false_positive_rows"], at_08["false_positive_cost"]) == (2, pytest.approx(-0.22))  # a row 2, b row 10
    assert at_08["score"] == pytest.approx(score_corpus(files, [STANDARD])["standard"]["score"])
    at_09 = outcome_at(files, STANDARD, 0.9)
    assert at_09["windows_hit"] == 0
    assert at_09["missed_windows"] == [{"file": "cat/a.csv", "start": "2020-01-01T00:04:00.000000", "end": "2020-01-01T00:06:00.000000"}]
    assert at_09["raw"] == pytest.approx(-1.0 - 0.22)
    assert at_09["score"] == pytest.approx(100 * (-1.22 + 1) / 2)


def test_corpus_threshold_and_normalised_score_by_hand():
    files = [file_a(), file_b()]
    res = score_corpus(files, [STANDARD, LOW_FN])
    std = res["standard"]
    # b's window is probationary, so the corpus has 1 window; best is T = 0.8:
    # a's window at 0.943743 minus two FPs (a row 2, b row 10, far after its window).
    assert std["windows"] == 1
    assert std["threshold"] == 0.8
    assert std["raw"] == pytest.approx(0.943743 - 0.22, abs=1e-6)
    assert std["score"] == pytest.approx(100 * (0.723743 + 1) / 2, abs=1e-4)  # 86.187
    low_fn = res["reward_low_FN_rate"]
    assert low_fn["threshold"] == 0.8
    assert low_fn["score"] == pytest.approx(100 * (0.723743 + 2) / 3, abs=1e-4)  # 90.791
    assert std["per_file"]["cat/b.csv"] == pytest.approx(-0.11)
    assert (std["windows_hit"], std["false_positive_rows"], std["missed_windows"]) == (1, 2, [])
    assert std["raw"] == pytest.approx(std["true_positive_weight"] + std["false_positive_cost"])


def test_null_and_perfect_detectors():
    ts = minutes(100)
    null = FileRows("n", ts, np.zeros(100), [(40, 49)])
    assert score_corpus([null], [STANDARD])["standard"]["score"] == pytest.approx(0.0)
    perfect = np.zeros(100)
    perfect[40] = 1.0
    assert score_corpus([FileRows("p", ts, perfect, [(40, 49)])], [STANDARD])["standard"]["score"] == pytest.approx(100.0)


def test_vectorised_sweep_matches_brute_force():
    rng = np.random.default_rng(0)
    files = []
    for i in range(4):
        n = int(rng.integers(200, 400))
        scores = np.round(rng.random(n), 2)  # many ties
        files.append(FileRows(f"f{i}", minutes(n), scores, [(60, 80), (150, 170)] if i % 2 else [(100, 130)]))
    for profile in (STANDARD, LOW_FN):
        thresholds, totals, _ = sweep(files, profile)
        for t, total in zip(thresholds[1:], totals[1:]):
            assert total == pytest.approx(sum(file_score(f, profile, t) for f in files))
        assert totals[0] == pytest.approx(-profile.fn * 6)
