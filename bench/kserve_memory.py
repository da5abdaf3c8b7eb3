"""Memory (and per-batch CPU) a waiting KServe half costs a worker, for sizing ``INFERWATCH_KSERVE_JOIN_MAX_PENDING``.

``python -m bench.kserve_memory [--halves N] [--json OUT]`` feeds ``N`` KServe requests
(binary-mode CloudEvents, no response) to the worker's intake and reports, per waiting
half and per request shape: the message's bytes, what the joiner holds beyond them
(traced with ``tracemalloc``: its tensors and CloudEvent attributes), the record the
worker writes to the ``kserve_waiting`` table, and their total.  Two shapes: one
``[1, 64]`` FP32 tensor (a typical tabular model) and 64 one-value tensors (the
worst case: an object per tensor).

It also times what the held halves cost each batch: the worker saves what changed
among them (``WaitingHalves.save``) after every batch.  With ``N`` held, one save is
timed with nothing changed, and after a batch of 1,000 more requests (``N`` being
the maximum held, as many go: 1,000 halves written waiting, 1,000 settled), next to
decoding that batch in the same run (the ratio is what the save adds to a batch's
decoding); the table and Faust's consumer are stand-ins (a dict, no commits), the
intake, ledger and metrics the worker's own.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry

from bench._output import emit
from streams.decoding import InferenceDecoder
from streams.decoding.kserve import REQUEST_TYPE
from streams.intake import Intake
from streams.metrics import Metrics
from streams.offsets import OffsetLedger
from streams.settings import Settings
from streams.waiting_halves import WaitingHalves, encode_message

SHAPES: dict[str, dict[str, Any]] = {
    "one_1x64_tensor": {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": [[0.5 + i for i in range(64)]]}]},
    "64_one_value_tensors": {"inputs": [{"name": f"f{i}", "shape": [1], "datatype": "FP32", "data": [0.5 + i]} for i in range(64)]},
}
_AT = 1_700_000_000.0


def _headers(ce_id: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()), ("ce_type", REQUEST_TYPE.encode()),
        ("ce_source", b"http://fraud-predictor/"), ("ce_time", b"2023-11-14T22:13:20Z"),
        ("ce_inferenceservicename", b"fraud"), ("content-type", b"application/json"),
    ]


_TOPIC = "inference.events"
#: Requests decoded next to one save (a batch at the worker's default ``INFERWATCH_BATCH_SIZE``).
BATCH = 1000


def _feed(intake: Intake[Any], value: bytes, offsets: range) -> None:
    """Requests with body ``value`` at ``offsets`` of partition 0, each with its own id (none is answered)."""
    for offset in offsets:
        intake.process(topic=_TOPIC, partition=0, offset=offset, key=b"fraud", value=value, headers=_headers(f"req-{offset}"), timestamp=_AT)


def measure(body: dict[str, Any], halves: int) -> dict[str, float]:
    """Bytes per waiting half of requests with ``body``."""
    value = json.dumps(body).encode()
    intake = Intake(InferenceDecoder(Settings(kserve_join_max_pending=halves)))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _feed(intake, value, range(halves))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    waiting = intake.waiting()
    if len(waiting) != halves:
        raise RuntimeError(f"{len(waiting)} halves waiting, {halves} expected")
    table = sum(len(encode_message(m)) for m in waiting) / halves
    per_half = {"message_bytes": float(len(value)), "joiner_bytes": held / halves, "table_record_bytes": table}
    per_half["total_bytes"] = sum(per_half.values())
    return per_half


class _Table:
    """A Faust table as ``WaitingHalves`` writes it: ``data``, and a changelog that goes nowhere."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def send_changelog(self, partition: int, key: str, value: bytes | None) -> None:
        pass


def save_cost(body: dict[str, Any], halves: int, repeats: int = 20, batches: int = 5) -> dict[str, float]:
    """Milliseconds of one save with ``halves`` requests with ``body`` held: with nothing changed, and
    after each of ``batches`` batches of :data:`BATCH` more requests (at ``max_pending`` = ``halves``
    each one lets the oldest go: the save puts :data:`BATCH` halves waiting and marks as many settled),
    next to decoding that batch; and the ratio of the latter two."""
    value = json.dumps(body).encode()
    tp = TP(_TOPIC, 0)
    intake = Intake(InferenceDecoder(Settings(kserve_join_max_pending=halves)))
    ledger = OffsetLedger()
    ledger.assign(tp, 0)
    consumer = SimpleNamespace(_paused_partitions=set(), _committed_offset={})  # Faust's: none paused, none committed
    waiting = WaitingHalves(_Table(), intake, ledger, consumer, _TOPIC, Metrics(CollectorRegistry()))
    waiting.restore()  # the partition is restored (nothing held in the table): its halves are saved from now on
    _feed(intake, value, range(halves))
    waiting.save()  # writes them all once
    started = time.perf_counter()
    for _ in range(repeats):
        waiting.save()
    unchanged_ms = (time.perf_counter() - started) / repeats * 1e3
    decode_ms = save_ms = 0.0
    for b in range(batches):
        started = time.perf_counter()
        _feed(intake, value, range(halves + b * BATCH, halves + (b + 1) * BATCH))
        decoded = time.perf_counter()
        waiting.save()
        decode_ms += (decoded - started) * 1e3 / batches
        save_ms += (time.perf_counter() - decoded) * 1e3 / batches
    return {
        "save_unchanged_ms": _figures(unchanged_ms),
        f"save_after_{BATCH}_requests_ms": _figures(save_ms),
        f"decode_{BATCH}_requests_ms": _figures(decode_ms),
        "save_vs_decode": _figures(save_ms / decode_ms),
    }


def _figures(x: float) -> float:
    """``x`` to three significant figures."""
    return float(f"{x:.3g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halves", type=int, default=5000, help="requests held at once per shape (default 5000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.halves < 1:
        parser.error("--halves must be at least 1")
    logging.disable(logging.WARNING)  # the intake logs nothing here; keep the output JSON only
    started = time.perf_counter()
    shapes = {name: measure(body, args.halves) for name, body in SHAPES.items()}
    max_pending = Settings().kserve_join_max_pending
    held = sorted({min(args.halves, 1000), args.halves, max_pending})
    result = {
        "halves": args.halves,
        "per_half": shapes,
        "at_default_max_pending_mb": {name: round(s["total_bytes"] * max_pending / 1e6, 1) for name, s in shapes.items()},
        "default_max_pending": max_pending,
        "save_per_batch": {str(n): save_cost(SHAPES["one_1x64_tensor"], n) for n in held},
        "seconds": round(time.perf_counter() - started, 2),
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
