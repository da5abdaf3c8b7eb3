"""Serial dependence of a stream with no change: the lag-1 autocorrelation a LatencyAnomaly whitens away.

Conformal p-values are uniform only on an *exchangeable* stream.  Latency that
wanders with load is autocorrelated: a high value is followed by more high
values, the surprisals of the value view come in runs, and a CUSUM calibrated
for independent Exp(1) increments crosses far more often than its budget
(a long-run variance ``(1 + rho) / (1 - rho)`` times that of independent ones).

:class:`SerialDependence` estimates the lag-1 autocorrelation ``rho`` of the
*normal scores* of the values (the inverse normal CDF of each value's mid-rank
in a sliding reference of past values): a rank correlation, so a heavy tail, a
timeout or a quantised metric does not sway it, and for a monotone transform of
a Gaussian AR(1) it is that AR(1)'s coefficient.  It is computed over the last
``window`` consecutive pairs, causally, with pairs that touch a crossing left
out (as crossings are left out of the references).  Only positive dependence
clearly beyond sampling noise counts: ``rho`` is 0 unless the estimate reaches
``gate / sqrt(pairs)`` (4 standard errors of the estimate on independent
values), so an exchangeable stream is scored exactly as before; nor is any
estimated while most values tie (normal scores of variance below 0.25: a tied
value's score drifts with the reference, and pairs of it drift together).
:class:`Whitener` applies it: the value a LatencyAnomaly's value views score.
"""

from __future__ import annotations

import collections
import math
from array import array
from statistics import NormalDist
from typing import Any

from models.anomaly.conformal import ConformalReference

__all__ = ["MAX_MEDIAN_WANDER", "SerialDependence", "Whitener", "normal_score"]

#: Largest wander of the raw reference's median over its window, in standard deviations of the
#: innovations, at which a value is whitened centred on that median (:meth:`Whitener.innovations`).
MAX_MEDIAN_WANDER = 0.5
#: Least variance of the normal scores for a correlation to be estimated (untied ones: about 1;
#: two equally frequent values: 0.45; one value 99.8 % of the time: 0.02).
_MIN_SPREAD = 0.25
#: Change of ``rho`` after which the innovations' reference is derived again.
_RHO_TOLERANCE = 0.01
#: Consecutive crossings after which the anchor follows the values (a run of them is a new level).
PATCH_RUN = 3

_INV = NormalDist().inv_cdf


def normal_score(below: int, ties: int, n: int) -> float:
    """Inverse normal CDF of the mid-rank of a value with ``below`` smaller and ``ties`` equal ones among ``n``."""
    return _INV((below + 0.5 * ties + 0.5) / (n + 1))


class SerialDependence:
    """Sliding lag-1 autocorrelation of normal scores, gated at ``gate`` standard errors.

    Parameters
    ----------
    window
        Consecutive pairs kept.
    gate
        Estimates below ``gate / sqrt(pairs)`` count as no dependence (``rho`` 0).
    cap
        Largest ``rho`` returned (a random walk is whitened into its steps, not beyond).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> dep, z = SerialDependence(2000), 0.0
    >>> for _ in range(3000):
    ...     z2 = 0.8 * z + rng.gauss(0.0, 0.6)
    ...     dep.add(z, z2)
    ...     z = z2
    >>> 0.75 < dep.rho < 0.85
    True
    >>> iid = SerialDependence(2000)
    >>> for _ in range(3000):
    ...     iid.add(rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0))
    >>> iid.rho
    0.0
    """

    def __init__(self, window: int, gate: float = 4.0, cap: float = 0.99) -> None:
        self.window, self.gate, self.cap = window, gate, cap
        self._pairs: collections.deque[tuple[float, float]] = collections.deque()
        self._sums = [0.0] * 5  # a, b, a*a, b*b, a*b
        self._adds = 0
        self.rho = 0.0

    def __len__(self) -> int:
        return len(self._pairs)

    def __getstate__(self) -> dict[str, Any]:
        """The pairs as packed doubles (``a0, b0, a1, b1, ...``)."""
        state = self.__dict__.copy()
        state["_pairs"] = array("d", (v for pair in self._pairs for v in pair))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        pairs = state["_pairs"]
        if isinstance(pairs, array):  # packed (a snapshot from before keeps its deque of tuples)
            flat = pairs.tolist()
            state["_pairs"] = collections.deque(zip(flat[0::2], flat[1::2]))
        self.__dict__.update(state)

    def add(self, a: float, b: float) -> None:
        """Add the pair (previous normal score ``a``, current ``b``) and update ``rho``."""
        self._pairs.append((a, b))
        s = self._sums
        for i, v in enumerate((a, b, a * a, b * b, a * b)):
            s[i] += v
        if len(self._pairs) > self.window:
            a0, b0 = self._pairs.popleft()
            for i, v in enumerate((a0, b0, a0 * a0, b0 * b0, a0 * b0)):
                s[i] -= v
        self._adds += 1
        if self._adds % self.window == 0:  # running sums drift: recompute now and then
            self._sums = [sum(col) for col in zip(*((p, q, p * p, q * q, p * q) for p, q in self._pairs))]
        self.rho = self._estimate()

    def _estimate(self) -> float:
        m = len(self._pairs)
        if m < 32:
            return 0.0
        sa, sb, saa, sbb, sab = self._sums
        va, vb = saa - sa * sa / m, sbb - sb * sb / m
        if va <= 0.0 or vb <= 0.0:
            return 0.0
        # Normal scores have about unit variance unless most values tie.  Then the score of the tied
        # value drifts as the reference's other values come and go, and the pairs of tied values
        # drift together: no evidence of dependence, so none is estimated.
        if min(va, vb) < _MIN_SPREAD * m:
            return 0.0
        r = (sab - sa * sb / m) / math.sqrt(va * vb)
        return min(r, self.cap) if r >= self.gate / math.sqrt(m) else 0.0


class Whitener:
    """The value a LatencyAnomaly's value views score: ``y - rho * (a - m)``.

    ``a`` is the last value that did not cross (or the last of :data:`PATCH_RUN` or more
    consecutive crossings: a run of them is a new level; otherwise, after a dip that did
    not cross, every later value was whitened against the dip, crossed, and left the
    anchor there: a storm of alarms), ``m`` the median of a reference of
    raw values (crossings kept out), ``rho`` the :class:`SerialDependence` of the
    values' normal scores in that reference (0 on an exchangeable stream, where
    the result is ``y`` itself).  On a stationary AR(1) the innovations are
    independent, so their conformal ranks are again uniform; centring on ``m``
    keeps the scored values on the scale of ``y`` while ``rho`` drifts.  Each
    event is scored with :meth:`value`, then either :meth:`learn` (it did not
    cross) or :meth:`skip` (it crossed).

    The median itself wanders, though, on a stream that is nearly a random walk: by
    about ``1.25 / ((1 - rho) sqrt(n))`` standard deviations of the innovations over a
    window of ``n`` (0.06 at ``rho`` 0.5, 0.3 at 0.9, 0.9 at 0.97 with ``n`` 2,000), and
    ``rho`` times that wander shifts the whitened values, so their surprisals come in
    runs again.  Beyond :data:`MAX_MEDIAN_WANDER`, :meth:`innovations` ranks the
    innovation ``y - rho * a`` among those of the values learned (each anchored by
    the one learned before it), all with the same ``rho`` (derived again when
    ``rho`` moves by 0.01): the median cancels out.
    """

    def __init__(self, window: int, tail: int) -> None:
        self.raw = ConformalReference(window, tail, min_scale=1e-3)
        self.dependence = SerialDependence(window)
        self.anchor: float | None = None
        self._z_last: float | None = None  # normal score of the last value learned, None after a crossing
        # Innovations ``y - rho_c * anchor`` of the values learned, while the median wanders (else None).
        self._innovations: ConformalReference | None = None
        self._rho_c = 0.0
        self.patch_run = PATCH_RUN  # 0: the anchor never follows crossings
        self._crossings_in_a_row = 0

    def __setstate__(self, state: dict[str, object]) -> None:
        # A whitener from before the innovations' reference: none yet.
        state.setdefault("_innovations", None)
        state.setdefault("_rho_c", 0.0)
        # From before the anchor followed a run of crossings: it never does, as before.
        state.setdefault("patch_run", 0)
        state.setdefault("_crossings_in_a_row", 0)
        self.__dict__.update(state)

    @property
    def rho(self) -> float:
        return self.dependence.rho

    def value(self, y: float) -> tuple[float, float | None]:
        """The whitened value of ``y``, and ``y``'s normal score among the raw values (``None`` if none yet)."""
        raw = self.raw
        z = normal_score(*raw.ranks(y), len(raw)) if raw.ready else None
        rho = self.dependence.rho
        if not rho or self.anchor is None:
            return y, z
        return y - rho * (self.anchor - raw.median), z

    def innovations(self, y: float) -> tuple[float, ConformalReference] | None:
        """``y``'s innovation and the reference to rank it in, while the median wanders more than
        :data:`MAX_MEDIAN_WANDER` (else ``None``: score :meth:`value` as usual)."""
        rho, n = self.rho, len(self.raw)
        if not rho or self.anchor is None or n < self.raw.window or 1.25 / ((1.0 - rho) * math.sqrt(n)) <= MAX_MEDIAN_WANDER:
            self._innovations = None
            return None
        if self._innovations is None or abs(rho - self._rho_c) > _RHO_TOLERANCE:
            # Each value learned was anchored by the one learned before it: the raw reference in order.
            ys = self.raw.in_order()
            ref = ConformalReference(n - 1, self.raw.tail, self.raw.min_scale)
            for a_s, y_s in zip(ys, ys[1:]):
                ref.add(y_s - rho * a_s)
            self._innovations, self._rho_c = ref, rho
        return y - self._rho_c * self.anchor, self._innovations

    def learn(self, y: float, z: float | None) -> None:
        """``y`` (normal score ``z``, from :meth:`value`) did not cross: it pairs with the last value
        learned, anchors the next one and joins the raw reference."""
        if z is not None and self._z_last is not None:
            self.dependence.add(self._z_last, z)
        if self.anchor is not None and self._innovations is not None:
            self._innovations.add(y - self._rho_c * self.anchor)
        self._z_last, self.anchor = z, y
        self._crossings_in_a_row = 0
        self.raw.add(y)

    def skip(self, y: float) -> None:
        """The event ``y`` crossed: no pair touching it counts towards the dependence, and it
        anchors the next value only as the ``patch_run``-th or later crossing in a row."""
        self._z_last = None
        self._crossings_in_a_row += 1
        if self.patch_run and self._crossings_in_a_row >= self.patch_run:
            self.anchor = y
