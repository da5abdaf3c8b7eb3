"""Synthetic streams with known change points for the drift benchmarks.

Every generator returns an array of shape ``(length, seeds)``: one column per
seed, so a vectorised detector can treat seeds as features and run them all
in one numpy update per event.  The change starts at ``onset``; abrupt
changes take full effect at once, gradual ones ramp linearly over ``ramp``
events (for distribution changes: the share of events drawn from the new
distribution ramps up).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Scenario", "SCENARIOS", "CATEGORICAL_FAMILIES", "CATEGORY_P0", "CATEGORY_P1", "RARE_P0", "RARE_P1", "MISSING_P0", "MISSING_P1", "generate"]

#: Category shares before and after the categorical share shift.
CATEGORY_P0 = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
CATEGORY_P1 = np.array([0.30, 0.25, 0.15, 0.12, 0.18])
#: An imbalanced binary classifier's predictions before and after its rare class rises from 1 % to 3 %.
RARE_P0 = np.array([0.99, 0.01])
RARE_P1 = np.array([0.97, 0.03])
#: Families whose values are category codes: their shares before and after the change.
CATEGORICAL_FAMILIES = {"categorical": (CATEGORY_P0, CATEGORY_P1), "rare_class": (RARE_P0, RARE_P1)}
#: Missing rate before and after the rise.
MISSING_P0, MISSING_P1 = 0.02, 0.05
#: Bimodal shape: mixture of N(+-A, 1 - A^2), mean 0 and variance 1.
BIMODAL_A = 0.9


@dataclass(frozen=True)
class Scenario:
    """One kind of change: ``family`` in numeric / categorical / rare_class / missing."""

    name: str
    family: str
    kind: str  # none, mean, variance, laplace, bimodal, shares, missing
    size: float = 0.0
    gradual: bool = False


def _scenarios() -> list[Scenario]:
    out = []
    for gradual in (False, True):
        tag = "gradual" if gradual else "abrupt"
        out += [Scenario(f"mean_{d:g}sd_{tag}", "numeric", "mean", d, gradual) for d in (0.25, 0.5, 1.0)]
        out += [Scenario(f"variance_x{v:g}_{tag}", "numeric", "variance", v, gradual) for v in (1.5, 2.0)]
        out += [Scenario(f"shape_laplace_{tag}", "numeric", "laplace", 0, gradual)]
        out += [Scenario(f"shape_bimodal_{tag}", "numeric", "bimodal", 0, gradual)]
        out += [Scenario(f"category_shares_{tag}", "categorical", "shares", 0, gradual)]
        out += [Scenario(f"rare_class_rise_{tag}", "rare_class", "shares", 0, gradual)]
        out += [Scenario(f"missing_rate_{tag}", "missing", "missing", 0, gradual)]
    return out


SCENARIOS = _scenarios()


def _ramp(length: int, onset: int, ramp: int, gradual: bool) -> np.ndarray:
    t = np.arange(length, dtype=float)
    r = np.clip((t - onset + 1) / ramp, 0.0, 1.0) if gradual else (t >= onset).astype(float)
    return r[:, None]


def _new_shape(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    if kind == "laplace":
        return rng.laplace(0.0, 1.0 / np.sqrt(2.0), shape)
    side = np.where(rng.random(shape) < 0.5, -BIMODAL_A, BIMODAL_A)
    return side + rng.standard_normal(shape) * np.sqrt(1.0 - BIMODAL_A**2)


def generate(sc: Scenario, length: int, onset: int, seeds: int, ramp: int = 1000, base_seed: int = 0) -> np.ndarray:
    """The stream of scenario ``sc`` for seeds ``0..seeds-1`` (one column each).

    Numeric: floats.  Categorical: category codes ``0..4`` as floats (rare class: ``0..1``).
    Missing: floats with NaN where the value is missing.
    """
    rng = np.random.default_rng([base_seed, zlib.crc32(sc.name.encode())])
    shape = (length, seeds)
    r = _ramp(length, onset, ramp, sc.gradual)
    if sc.family in CATEGORICAL_FAMILIES:
        p0, p1 = CATEGORICAL_FAMILIES[sc.family]
        p = p0 + r[..., None] * (p1 - p0) if sc.kind != "none" else p0
        cdf = np.cumsum(np.broadcast_to(p, (length, 1, p.shape[-1])), axis=-1)
        u = rng.random(shape)
        return (u[..., None] > cdf).sum(-1).clip(0, p0.size - 1).astype(float)
    if sc.family == "missing":
        rate = MISSING_P0 + (r * (MISSING_P1 - MISSING_P0) if sc.kind != "none" else 0.0)
        x = rng.standard_normal(shape)
        x[rng.random(shape) < rate] = np.nan
        return x
    e = rng.standard_normal(shape)
    if sc.kind == "mean":
        return e + sc.size * r
    if sc.kind == "variance":
        return e * (1.0 + (np.sqrt(sc.size) - 1.0) * r)
    if sc.kind in ("laplace", "bimodal"):
        return np.where(rng.random(shape) < r, _new_shape(sc.kind, rng, shape), e)
    return e


def oracle_llr(sc: Scenario, x: np.ndarray) -> np.ndarray:
    """Log-likelihood ratio of the final post-change vs the pre-change law, per value."""
    if sc.kind == "mean":
        return sc.size * (x - sc.size / 2.0)
    if sc.kind == "variance":
        return -0.5 * np.log(sc.size) + 0.5 * x * x * (1.0 - 1.0 / sc.size)
    if sc.kind == "laplace":
        b = 1.0 / np.sqrt(2.0)
        return -np.log(2 * b) - np.abs(x) / b + 0.5 * np.log(2 * np.pi) + 0.5 * x * x
    if sc.kind == "bimodal":
        s2 = 1.0 - BIMODAL_A**2
        mix = 0.5 * (np.exp(-((x - BIMODAL_A) ** 2) / (2 * s2)) + np.exp(-((x + BIMODAL_A) ** 2) / (2 * s2)))
        return np.log(mix / np.sqrt(s2)) + 0.5 * x * x
    if sc.kind == "shares":
        p0, p1 = CATEGORICAL_FAMILIES[sc.family]
        return np.log(p1 / p0)[x.astype(int)]
    if sc.kind == "missing":
        m = np.isnan(x)
        return np.where(m, np.log(MISSING_P1 / MISSING_P0), np.log((1 - MISSING_P1) / (1 - MISSING_P0)))
    raise ValueError(f"no oracle for {sc.kind!r}")
