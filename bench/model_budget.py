"""False alerts per model per day at ``INFERWATCH_FALSE_ALERTS_PER_MODEL_PER_DAY``, against it.

    python -m bench.model_budget [--days N] [--rate R] [--seeds S] [--canary-hours H] [--json OUT]

A model serves ``R`` requests a second (event time) for ``N`` days with no change:
four numeric features (normal, lognormal, a small count, a flag), one categorical
(three countries, 1 % null), confidence and a predicted class, lognormal latency
from two hosts.  The detection core (``streams.core.Engine``, the worker's own) runs
it in batches of 1,000; every alert it opens is false.  Per setting — daily budgets
of 1 and 10, and the per-million default (1 per detector) for comparison — the
alerts opened per day (mean over seeds and days, with the upper 95 % Poisson bound)
and by kind, next to the setting.  The daily budget holds when the mean stays within it.

``canary``: the same model on a canary first, at a tenth of ``R`` for ``H`` hours, then at
``R``.  A daily budget of 1 that follows the rate (the worker's) next to one spread at the
rate of the first events only (as before the rate was followed), on the same streams.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from bench._output import emit, progress_log
from bench._stats import poisson_upper
from streams.core import Engine
from streams.records import InferenceEvent
from streams.settings import Settings

log = progress_log("model_budget")
_BATCH = 1000


def events(n: int, rate: float, rng: np.random.Generator, canary: tuple[int, float] | None = None) -> list[InferenceEvent]:
    """``n`` requests at ``rate`` a second (Poisson arrivals), with no change; with ``canary``
    ``(k, r)`` the first ``k`` of them at ``r`` a second instead."""
    gaps = rng.exponential(1.0 / rate, n)
    if canary is not None:
        gaps[: canary[0]] *= rate / canary[1]
    ts = 1.7e9 + np.cumsum(gaps)
    normal, spread, count, flag = rng.normal(size=n), rng.lognormal(3.0, 0.5, n), rng.poisson(2.0, n), rng.random(n) < 0.2
    country = rng.choice(np.array(["DE", "FR", "US"], dtype=object), n, p=[0.5, 0.3, 0.2])
    null = rng.random(n) < 0.01
    conf, latency, host = rng.beta(8.0, 2.0, n), rng.lognormal(3.0, 0.4, n), rng.integers(0, 2, n)
    return [
        InferenceEvent(
            ts=float(ts[i]), model="fraud", model_version="v1", host=f"node-{host[i]}", latency_ms=float(latency[i]),
            features={"amount": float(spread[i]), "score": float(normal[i]), "items": int(count[i]), "new": bool(flag[i]),
                      "country": None if null[i] else country[i]},
            prediction="fraud" if conf[i] < 0.5 else "ok", confidence=float(conf[i]),
        )
        for i in range(n)
    ]


def alerts_opened(settings: Settings, stream: list[InferenceEvent], first_rate_only: bool = False) -> Counter[str]:
    """Alerts the engine opens over ``stream``, by kind; ``first_rate_only``: the daily budget stays
    spread at the rate of the first events (it is never spread again)."""
    engine, kinds = Engine(settings), Counter[str]()
    fixed = mock.patch("streams.core.model_monitor.rate_moved", lambda budgeted, measured: budgeted is None)
    with fixed if first_rate_only else nullcontext():
        for i in range(0, len(stream), _BATCH):
            for alert in engine.on_events(stream[i : i + _BATCH]).alerts:
                if alert.status == "firing":
                    kinds[alert.kind] += 1
    return kinds


def _summary(kinds: Counter[str], days: float, budget: float | None) -> dict[str, Any]:
    total = sum(kinds.values())
    return {
        "budget_per_day": budget,
        "alerts": total, "alerts_per_day": round(total / days, 3), "alerts_per_day_upper95": round(poisson_upper(total) / days, 3),
        "by_kind": dict(kinds),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=2.0, help="days of event time per seed (default 2)")
    ap.add_argument("--rate", type=float, default=2.0, help="requests a second (default 2: 172,800 a day)")
    ap.add_argument("--seeds", type=int, default=3, help="streams (default 3)")
    ap.add_argument("--canary-hours", type=float, default=2.0, help="hours at a tenth of the rate before full traffic (default 2)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.days <= 0 or args.rate <= 0 or args.seeds < 1 or args.canary_hours < 0:
        ap.error("--days and --rate must be > 0, --seeds >= 1, --canary-hours >= 0")
    n = int(args.days * 86_400 * args.rate)
    canary = (int(args.canary_hours * 3600 * args.rate / 10), args.rate / 10)
    settings = {"1_per_day": Settings(false_alerts_per_model_per_day=1.0), "10_per_day": Settings(false_alerts_per_model_per_day=10.0),
                "1_per_million_per_detector": Settings()}
    ramps = {"1_per_day_following_the_rate": False, "1_per_day_at_the_first_events_rate": True}
    started, kinds = time.perf_counter(), {name: Counter[str]() for name in [*settings, *ramps]}
    for seed in range(args.seeds):
        stream = events(n, args.rate, np.random.default_rng(seed))
        for name, s in settings.items():
            kinds[name] += alerts_opened(s, stream)
            log(f"seed {seed} {name}: {sum(kinds[name].values())} alerts so far")
        stream = events(n, args.rate, np.random.default_rng(1000 + seed), canary)
        for name, first_only in ramps.items():
            kinds[name] += alerts_opened(settings["1_per_day"], stream, first_rate_only=first_only)
            log(f"seed {seed} canary, {name}: {sum(kinds[name].values())} alerts so far")
    days = args.days * args.seeds
    canary_days = days + args.seeds * canary[0] * (1 / canary[1] - 1 / args.rate) / 86_400  # the canary's hours are longer
    result: dict[str, Any] = {
        "events_per_seed": n, "rate_per_second": args.rate, "days": days,
        "settings": {name: _summary(kinds[name], days, s.false_alerts_per_model_per_day or None) for name, s in settings.items()},
        "canary": {"hours": args.canary_hours, "rate_per_second": canary[1], "events": canary[0], "days": round(canary_days, 3),
                   **{name: _summary(kinds[name], canary_days, 1.0) for name in ramps}},
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
