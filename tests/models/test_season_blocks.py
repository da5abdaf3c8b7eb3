"""SeasonBlocks: block medians of the seasonal residual and their reference."""

from __future__ import annotations

import numpy as np

from models.anomaly.season_blocks import MAX_BLOCK_TAIL, SeasonBlocks, block_tail


def test_a_full_block_gives_its_median_and_starts_a_new_one():
    blocks = SeasonBlocks(block=4, window=400)
    out = [blocks.add(r) for r in (1.0, 9.0, 2.0, 3.0, 5.0)]
    assert out == [None, None, None, 2.5, None]  # even block: the mean of the middle two


def test_dropping_the_open_block_discards_its_residuals():
    blocks = SeasonBlocks(block=3, window=300)
    blocks.add(100.0)
    blocks.add(100.0)
    blocks.drop_open()  # a crossing: its residual and the block's earlier ones are not learned
    assert [blocks.add(r) for r in (0.0, 1.0, 2.0)] == [None, None, 1.0]


def test_reference_is_ready_after_four_tails_of_medians_and_slides():
    blocks = SeasonBlocks(block=6, window=2000)
    assert blocks.reference.window == 333 and blocks.reference.tail == MAX_BLOCK_TAIL
    rng = np.random.default_rng(0)
    learned = 0
    while not blocks.ready:
        m = blocks.add(float(rng.normal()))
        if m is not None:
            blocks.learn(m)
            learned += 1
    assert learned == 4 * MAX_BLOCK_TAIL
    for _ in range(6 * 400):
        m = blocks.add(float(rng.normal()))
        if m is not None:
            blocks.learn(m)
    assert len(blocks.reference) == 333


def test_tail_shrinks_with_few_blocks_per_window():
    assert block_tail(2000, 6) == 12 and block_tail(256, 6) == 5 and block_tail(64, 4) == 2


def _lag1(a: np.ndarray) -> float:
    return float(np.corrcoef(a[:-1], a[1:])[0, 1])


def _ar1_and_block_medians(phi: float, n: int, seed: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) noise with coefficient ``phi`` and the medians of its disjoint blocks of ``block``."""
    e, r = np.random.default_rng(seed).normal(size=n), np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + e[t]
    blocks = SeasonBlocks(block=block, window=2000)
    return r, np.array([m for m in (blocks.add(float(v)) for v in r) if m is not None])


def test_block_medians_of_autocorrelated_noise_are_nearly_independent():
    # AR(1) 0.7 residuals: lag-1 autocorrelation 0.7 per residual, about 0.27 between consecutive block medians.
    r, medians = _ar1_and_block_medians(0.7, 60_000, 3, 6)
    assert _lag1(r) > 0.65 and _lag1(medians) < 0.35


def test_a_lagged_median_joins_the_reference_after_lag_later_ones():
    blocks = SeasonBlocks(block=1, window=100, lag=3)
    for m in (1.0, 2.0, 3.0):
        blocks.learn(m)
    assert len(blocks.reference) == 0
    blocks.learn(4.0)
    assert blocks.reference.values() == [1.0]
    blocks.learn(5.0)
    assert sorted(blocks.reference.values()) == [1.0, 2.0]


def test_block_medians_of_ar09_latency_in_blocks_of_24_are_nearly_independent():
    # The values' level_shift on wandering latency (latency_levels): AR(1) 0.9 per value.
    r, medians = _ar1_and_block_medians(0.9, 120_000, 4, 24)
    assert _lag1(r) > 0.85 and _lag1(medians) < 0.3  # about 0.23


def test_blocks_pickled_before_the_lag_learn_at_once():
    import pickle

    blocks = SeasonBlocks(block=2, window=100)
    state = blocks.__dict__.copy()
    del state["lag"], state["_waiting"]
    old = SeasonBlocks.__new__(SeasonBlocks)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    old.learn(1.0)
    assert old.lag == 0 and old.reference.values() == [1.0]
