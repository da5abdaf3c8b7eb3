"""Record a real NVML trace for the tests: ``inferwatch gpu-collect --output`` under a scripted load.

Needs an NVIDIA GPU with its driver, nvidia-smi, and Python with nvidia-ml-py, msgspec,
click and torch (CUDA).  Run from the repository root::

    python tests/data/nvml_trace/record.py OUT_DIR [--interval 0.2] [--scenario phases|serving]

The fixtures are one such OUT_DIR per GPU and scenario (``h200/``, ``h100/``,
``h200_serving/``), with ``trace.jsonl`` gzipped and ``collect.log`` left out.

The collector runs as its own process (``python -m streams.cli gpu-collect``) while this
one loads the GPU in phases.  Scenario ``phases``: idle, compute (bf16 matrix products),
cooldown (idle), fill (framebuffer allocated to ``--fill`` of its total), after (idle).
Scenario ``serving``: idle, serving (a model's weights loaded, then requests of random
size arriving at random, about half the GPU's time), saturated (the same weights,
matrix products back to back: the card heats and its clocks sag under the power cap),
after (weights freed, idle).  OUT_DIR gets
``trace.jsonl`` (the collector's lines, the bytes the GPU topic would get),
``smi.csv`` (nvidia-smi's own readings each second, to cross-check the collector),
``phases.json`` (each phase's start and end, epoch seconds, and the GPU's name) and
``collect.log`` (the collector's stderr).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Each scenario's (phase, seconds).
SCENARIOS = {
    "phases": (("idle", 75.0), ("compute", 40.0), ("cooldown", 25.0), ("fill", 15.0), ("after", 10.0)),
    "serving": (("idle", 60.0), ("serving", 120.0), ("saturated", 120.0), ("after", 30.0)),
}
#: Serving: bytes of weights held from the first request until the after phase, mean seconds
#: between requests, and the range of 8192 x 8192 matrix products per request.
_WEIGHTS, _GAP, _PRODUCTS = 16 << 30, 0.02, (2, 10)
_SMI_FIELDS = "timestamp,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,clocks.sm,clocks.mem"
_REASONS = ("clocks_event_reasons.active", "clocks_throttle_reasons.active")


def _smi_query() -> str:
    """nvidia-smi's query fields, with whichever name of the clocks-event reasons this driver knows."""
    for reasons in _REASONS:
        probe = subprocess.run(["nvidia-smi", f"--query-gpu={reasons}", "--format=csv"], capture_output=True, text=True)
        if probe.returncode == 0:
            return f"{_SMI_FIELDS},{reasons}"
    return _SMI_FIELDS


def _compute(seconds: float) -> None:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()


def _serve(seconds: float, rng: Any, weights: list[Any]) -> None:
    """Requests at random (exponential gaps of mean ``_GAP``), each a random number of matrix products."""
    import torch

    if not weights:
        weights.append(torch.empty(_WEIGHTS, dtype=torch.uint8, device="cuda"))
        weights.append(torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16))
    a = weights[1]
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(rng.randint(*_PRODUCTS)):
            a @ a
        torch.cuda.synchronize()
        time.sleep(rng.expovariate(1.0 / _GAP))


def _fill(seconds: float, fraction: float) -> None:
    import torch

    free, total = torch.cuda.mem_get_info()
    left = int(total * fraction) - (total - free)
    blocks = []
    while left > 0:
        size = min(1 << 30, left)
        blocks.append(torch.empty(size, dtype=torch.uint8, device="cuda"))
        left -= size
    time.sleep(seconds)
    del blocks
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--interval", type=float, default=0.2, help="collector interval (s)")
    parser.add_argument("--fill", type=float, default=0.97, help="framebuffer fraction the fill phase reaches")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="phases", help="the load's phases (default phases)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import torch  # before the idle phase: importing takes seconds, the CUDA context comes with the first load

    name = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    plan = SCENARIOS[args.scenario]
    total = sum(seconds for _, seconds in plan)
    rng = random.Random(0)
    weights: list[Any] = []  # the serving model's, held until the after phase
    rounds = int(total / args.interval)
    smi = subprocess.Popen(["nvidia-smi", f"--query-gpu={_smi_query()}", "--format=csv,nounits", "-lms", "1000", "-f", str(args.out / "smi.csv")])
    with (args.out / "collect.log").open("wb") as log:
        collector = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "gpu-collect", "--interval", str(args.interval), "--host", "device",
             "--rounds", str(rounds), "--output", str(args.out / "trace.jsonl")],
            stderr=log,
        )
        phases = []
        for phase, seconds in plan:
            start = time.time()
            print(f"{phase} for {seconds:.0f} s", flush=True)
            if phase in ("compute", "saturated"):
                _compute(seconds)
            elif phase == "fill":
                _fill(seconds, args.fill)
            elif phase == "serving":
                _serve(seconds, rng, weights)
            elif phase == "after" and weights:
                weights.clear()
                torch.cuda.empty_cache()
                time.sleep(seconds)
            else:
                time.sleep(seconds)
            phases.append({"phase": phase, "start": start, "end": time.time()})
        code = collector.wait(timeout=120)
    smi.terminate()
    info = {"gpu": name, "torch": torch.__version__, "interval": args.interval, "scenario": args.scenario, "phases": phases}
    (args.out / "phases.json").write_text(json.dumps(info, indent=1))
    print(f"collector exited {code}; {sum(1 for _ in (args.out / 'trace.jsonl').open())} samples", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
