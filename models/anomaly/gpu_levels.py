"""Steps between the medians of consecutive blocks of GPU samples: a change of operating point.

:class:`~models.anomaly.GpuAnomaly` scores single-sample steps, against steps of the
last ``2 * window`` samples.  A serving GPU's utilisation moves by tens of percent
from one sample to the next (8 to 46 % on a real H200 serving requests of random
size), so when the same GPU then saturates (99 %, power 370 -> 690 W, SM clock
1,965 -> 1,455 MHz under the power cap) no single step is new: each is within the
serving noise, and the power climbs over five samples.  The *medians* of blocks of
samples move far less with that noise (28 +- 4 %), and the step between two
consecutive block medians shows the new operating point at once.

:class:`BlockSteps` keeps each field's last ``2 * block`` samples and, every
``block // 2`` samples, gives the step from the median of the earlier ``block`` to
that of the later.  A step is ranked against two references, and gets the larger
p-value: the steps of the *regime since the detector's last alarm*
(:meth:`BlockSteps.restart` empties it; the detector leaves out the steps whose
blocks hold the alarm's first samples, the change's own ramp), so a job's block
noise is judged against its own and not against idle's zeros; and every step of
the last ``window`` steps, so a change that recurs (jobs starting every few hundred
samples) is not new each time the regime restarts.  The regime's reference is ready
after ``4 * tail`` steps.  A step beyond a side with no steps on it (steps nearly all 0)
gets its plain rank, unless the field's samples have not moved at all in the regime (a
clock held in a job): then any step is new, its tail on the scale floor.
"""

from __future__ import annotations

import collections
import math

from models.anomaly.conformal import ConformalReference
from models.anomaly.context import median_of_few

__all__ = ["BlockSteps"]


class BlockSteps:
    """Per-field steps between the medians of the last ``block`` samples and of the ``block`` before them.

    A step is taken every ``block // 2`` samples, so the blocks overlap by half: a change
    that takes a few samples falls inside one block of some step instead of being split
    between two.  Consecutive steps share samples and are dependent, so the detector tests
    each step alone (a union bound holds however they depend on each other; a CUSUM over
    them would not) and its refractory span merges an exceedance with its neighbours.

    Parameters
    ----------
    fields
        Values per sample (NaN: missing; a block with fewer than half of a field's values
        has no median for it, and no step).
    block
        Samples per block (>= 2).
    window
        Steps kept per field.
    tail, min_scale
        The references' tail size and scale floor (see :class:`ConformalReference`).

    Examples
    --------
    >>> steps = BlockSteps(fields=1, block=4, window=100, tail=2)
    >>> [steps.add([v]) for v in (1.0, 2.0, 1.0, 2.0, 5.0, 5.0, 6.0)]  # every 2 samples, once 8 are seen
    [None, None, None, None, None, None, None]
    >>> steps.add([5.0])
    {0: 3.5}
    >>> steps.add([5.0]), steps.add([5.0])
    (None, {0: 1.5})
    """

    def __init__(self, fields: int, block: int, window: int, tail: int, min_scale: float = 0.0) -> None:
        self.block, self.stride = block, max(1, block // 2)
        self._recent: list[collections.deque[float]] = [collections.deque(maxlen=2 * block) for _ in range(fields)]
        self._seen = 0
        self._refs = [ConformalReference(window, tail, min_scale) for _ in range(fields)]
        self._sliding = [ConformalReference(window, tail, min_scale) for _ in range(fields)]
        # Whether each field's samples have moved in this regime (the oldest of the recent samples,
        # as it leaves, differed from the one that left before it), once the samples held at the
        # restart and the change's ramp after them have left.
        self._moved = [False] * fields
        self._left: list[float | None] = [None] * fields
        self._unwatched = 0

    def add(self, z: list[float]) -> dict[int, float] | None:
        """Add one sample; every ``stride`` samples (once ``2 * block`` are seen), each field's
        step from the median of the earlier block to that of the later one (else None)."""
        watch = self._unwatched == 0
        self._unwatched = max(0, self._unwatched - 1)
        for j, (recent, v) in enumerate(zip(self._recent, z)):
            if len(recent) == recent.maxlen:
                out, last = recent[0], self._left[j]
                if watch and last is not None and out != last and out == out and last == last:  # not NaN
                    self._moved[j] = True
                self._left[j] = out
            recent.append(v)
        self._seen += 1
        if self._seen < 2 * self.block or self._seen % self.stride:
            return None
        steps = {}
        for j, recent in enumerate(self._recent):
            values = list(recent)
            before, after = _median(values[: self.block]), _median(values[self.block :])
            if not (math.isnan(before) or math.isnan(after)):
                steps[j] = after - before
        return steps

    def ready(self, j: int) -> bool:
        """Whether field ``j``'s regime reference holds enough steps to score one."""
        return self._refs[j].ready

    def p_value(self, j: int, step: float, u: float) -> float:
        """Two-sided conformal p-value of field ``j``'s ``step`` (tie-break ``u``): the larger of
        its p-values against the regime's steps and, once ready, against all the steps of the
        last ``window`` (a change that recurs, a job starting every few hundred samples, is not
        new however often the regime restarts)."""
        still = not self._moved[j]
        p = _p_value(self._refs[j], step, u, still)
        if self._sliding[j].ready:
            p = max(p, _p_value(self._sliding[j], step, u, still))
        return p

    def learn(self, steps: dict[int, float], regime: bool = True) -> None:
        """Add the steps to the sliding references and, with ``regime``, to the regime's."""
        for j, d in steps.items():
            self._sliding[j].add(d)
            if regime:
                self._refs[j].add(d)

    def restart(self) -> None:
        """Forget the regime's steps (a new regime starts); the sliding steps and the samples stay."""
        self._refs = [ConformalReference(r.window, r.tail, r.min_scale) for r in self._refs]
        self._moved = [False] * len(self._moved)
        self._left = [None] * len(self._left)
        self._unwatched = 3 * self.block  # the samples held now, and the change's ramp after them


def _p_value(ref: ConformalReference, step: float, u: float, still: bool) -> float:
    """Two-sided p-value of ``step`` against ``ref``.

    Beyond the range the exponential tail is extrapolated only if that side's ``tail``
    extremes lie beyond the median (the next value is not the median): steps that are
    nearly all 0 (a GPU mostly idle, its rare busy blocks) have a few extremes and 0, which
    would give a scale a fraction of the steps seen and a step twice the largest the tiniest
    p-value.  Otherwise the plain conformal rank.
    """
    t = ref.tail
    if step > ref.highest:
        fitted, excess = ref.kth(-t - 1) > ref.median, step - ref.highest
    elif step < ref.lowest:
        fitted, excess = ref.kth(t) < ref.median, ref.lowest - step
    else:
        return ref.p_value(step, "two-sided", u)  # within the range: its rank
    if not fitted and still:
        # A field that has not moved in this regime, and no step on this side: any step is new,
        # on the scale floor (not the gap to the steps on the other side, as for a quantised metric).
        return min(1.0, 2.0 * ref.tail_p(excess, ref.min_scale) / (len(ref) + 1))
    return ref.p_value(step, "two-sided", u, extrapolate=fitted)


def _median(values: list[float]) -> float:
    """Median of the values present (not NaN), or NaN if fewer than half are."""
    present = [v for v in values if v == v]  # NaN != NaN
    return median_of_few(present) if present and 2 * len(present) >= len(values) else math.nan
