"""Decoding speed of the native JSON inference event (64 numeric features).

``python -m bench.decode [--events N] [--json OUT]`` prints records/second for
inferwatch's decoder next to stdlib ``json`` and ``orjson`` parsing the same
bytes into dicts (no validation), measured in one run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench._output import emit
from streams.decoding import InferenceDecoder, encode_inference_event
from streams.records import InferenceEvent
from streams.settings import Settings


def make_messages(n: int, n_features: int = 64, seed: int = 0) -> list[bytes]:
    """``n`` distinct encoded events, each with ``n_features`` numeric features."""
    rng = random.Random(seed)
    return [
        encode_inference_event(
            InferenceEvent(
                ts=1_700_000_000.0 + i * 0.01,
                model="fraud-v2",
                model_version="2024-06-01",
                latency_ms=rng.lognormvariate(3.0, 0.4),
                request_id=f"req-{i}",
                host="gpu-node-1",
                gpu=i % 4,
                features={f"f{j:02d}": rng.gauss(0.0, 1.0) for j in range(n_features)},
                prediction="fraud" if rng.random() < 0.1 else "ok",
                confidence=rng.uniform(0.5, 1.0),
            )
        )
        for i in range(n)
    ]


def _rate(fn: Callable[[bytes], Any], messages: list[bytes], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for m in messages:
            fn(m)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="messages per pass (default 20000)")
    parser.add_argument("--repeats", type=int, default=5, help="passes; the best is reported (default 5)")
    parser.add_argument("--json", type=Path, help="write the result JSON here too")
    args = parser.parse_args(argv)

    messages = make_messages(args.events)
    decoder = InferenceDecoder(Settings())
    print(f"decoding {len(messages)} events x {args.repeats} passes ...", file=sys.stderr)
    rates = {
        "inferwatch_decoder": _rate(decoder.decode, messages, args.repeats),
        "orjson_loads_dict_only": _rate(orjson.loads, messages, args.repeats),
        "stdlib_json_loads_dict_only": _rate(json.loads, messages, args.repeats),
    }
    result = {
        "benchmark": "decode_native_inference_event",
        "features": 64,
        "message_bytes_mean": sum(map(len, messages)) / len(messages),
        "records_per_second": {k: round(v) for k, v in rates.items()},
        "ratio_vs_orjson_dict": round(rates["inferwatch_decoder"] / rates["orjson_loads_dict_only"], 3),
        "ratio_vs_stdlib_json_dict": round(rates["inferwatch_decoder"] / rates["stdlib_json_loads_dict_only"], 3),
    }
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
