"""BlockSteps: the steps between block medians that GpuAnomaly's level view scores."""

from __future__ import annotations

import math

import numpy as np

from models.anomaly.gpu_levels import BlockSteps


def test_steps_come_every_half_block_from_the_two_latest_blocks():
    steps = BlockSteps(fields=2, block=4, window=100, tail=2)
    got = [steps.add([float(t), 10.0 * t]) for t in range(12)]
    assert [i for i, s in enumerate(got) if s is not None] == [7, 9, 11]  # once 8 are seen, every 2
    # median(4..7) - median(0..3) = 4, for the second field 40
    assert got[7] == {0: 4.0, 1: 40.0} and got[11] == {0: 4.0, 1: 40.0}


def test_a_field_missing_in_half_a_block_has_no_step():
    steps = BlockSteps(fields=2, block=4, window=100, tail=2)
    nan = math.nan
    rows = [[1.0, 1.0], [1.0, nan], [1.0, nan], [1.0, nan], [2.0, 5.0], [2.0, 5.0], [2.0, 5.0], [2.0, 5.0]]
    out = [steps.add(r) for r in rows]
    assert out[-1] == {0: 1.0}  # the second field has one value of four in the first block
    more = [steps.add([2.0, 5.0]) for _ in range(2)]
    assert more[-1] == {0: 0.5, 1: 0.0}  # blocks [1, 1, 2, 2] -> [2, 2, 2, 2]; second field: 2 of 4 present


def _learned(values: np.ndarray, moving: bool = True) -> BlockSteps:
    """BlockSteps whose references hold ``values``, after samples that moved (or, with
    ``moving`` false, samples all the same: a field still in this regime)."""
    steps = BlockSteps(fields=1, block=8, window=500, tail=16, min_scale=0.01)
    for t in range(40):
        steps.add([float(t % 2) if moving else 1.0])
    for v in values:
        steps.learn({0: float(v)})
    return steps


def test_a_step_far_beyond_a_spread_tail_is_far_out():
    steps = _learned(np.random.default_rng(0).laplace(0.0, 0.05, 500))
    assert steps.ready(0)
    assert steps.p_value(0, 1.5, 0.5) < 1e-8  # 30 scales beyond the centre, 25 beyond the largest
    assert steps.p_value(0, 0.1, 0.5) > 0.01


def test_a_step_beyond_steps_nearly_all_zero_gets_its_plain_rank():
    """A GPU mostly idle: a busy block now and then; its steps' few extremes say nothing of a
    tail's scale, so a step beyond them is ranked, not extrapolated."""
    values = np.zeros(500)
    values[[50, 200, 350]] = [0.4, 1.1, 0.7]
    steps = _learned(values)
    p = steps.p_value(0, 2.6, 0.5)
    assert p == 2.0 * 0.5 / 501  # two-sided, the tie-break draw alone beyond the range
    assert steps.p_value(0, -2.6, 0.5) == p


def test_restart_forgets_the_steps_not_the_samples():
    steps = BlockSteps(fields=1, block=4, window=100, tail=2)
    for t in range(40):
        out = steps.add([float(t % 3)])
        if out:
            steps.learn(out)
    assert steps.ready(0)
    steps.restart()
    assert not steps.ready(0)
    assert steps.add([1.0]) is None and steps.add([1.0]) is not None  # the blocks go on


def test_a_step_of_a_field_that_has_not_moved_is_new_on_the_scale_floor():
    """A field constant through the regime (an SM clock held at 1,410 MHz in a job): its block
    steps are all 0, and a drop beyond them is new, its tail on the scale floor (a 30 % drop,
    -0.36 in asinh units, is 36 floors out)."""
    still = _learned(np.zeros(500), moving=False)
    assert still.p_value(0, -0.36, 0.5) < 1e-10
    assert _learned(np.zeros(500)).p_value(0, -0.36, 0.5) == 2.0 * 0.5 / 501  # once it has moved: its rank
