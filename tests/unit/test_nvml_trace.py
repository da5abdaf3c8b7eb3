"""Real NVML traces: ``inferwatch gpu-collect --output`` on an NVIDIA H200 and an H100 (driver 580) under load.

``tests/data/nvml_trace/record.py`` recorded each, 0.2 s apart, one folder per trace.
``h200/`` and ``h100/`` (825 samples): the GPU loaded in phases, idle, compute (bf16 matrix
products), cooldown, framebuffer fill to 97 %, after.  ``h200_serving/`` (1,650 samples):
idle, then two minutes of serving (16 GiB of weights, requests of random size at random
times), two minutes saturated (products back to back, under the power cap), after.
nvidia-smi's own readings of the same seconds (``smi.csv``) lie beside each.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.anomaly.dcgm import dcgm_observation
from models.anomaly.gpu_anomaly import GpuAnomaly
from streams.decoding import GpuDecoder
from streams.records import GpuSample
from streams.settings import Settings

DATA = Path(__file__).parents[1] / "data" / "nvml_trace"
#: The traces under the phases load, one folder per GPU under DATA.
GPUS = ("h200", "h100")
#: Every recorded trace: those and the serving load.
TRACES = (*GPUS, "h200_serving")
#: Samples in each trace: its planned seconds over the 0.2 s interval.
SAMPLES = {"h200": 825, "h100": 825, "h200_serving": 1650}


def trace_samples(gpu: str) -> list[GpuSample]:
    """``gpu``'s recorded trace, decoded as the worker decodes the GPU topic."""
    decoder = GpuDecoder(Settings())
    return [sample for line in gzip.open(DATA / gpu / "trace.jsonl.gz") for sample in decoder.decode(line.rstrip(b"\n"))]


@pytest.fixture(scope="module", params=GPUS)
def gpu(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def samples(gpu: str) -> list[GpuSample]:
    return trace_samples(gpu)


def _phases(trace: str) -> dict[str, tuple[float, float]]:
    """Each phase's (start, end) in epoch seconds, in the order they ran."""
    return {p["phase"]: (p["start"], p["end"]) for p in json.loads((DATA / trace / "phases.json").read_text())["phases"]}


@pytest.fixture(scope="module")
def phases(gpu: str) -> dict[str, tuple[float, float]]:
    return _phases(gpu)


def _alarms(samples: list[GpuSample], phases: dict[str, tuple[float, float]]) -> list[tuple[str, float, str, list[str]]]:
    """GpuAnomaly's alarms over ``samples``: (phase, seconds into it, kind, hard signals)."""
    detector = GpuAnomaly()
    out: list[tuple[str, float, str, list[str]]] = []
    for sample in samples:
        detector.update(dcgm_observation(sample.fields))
        if detector.fired:
            phase = max((p for p in phases if phases[p][0] <= sample.ts), key=lambda p: phases[p][0])
            evidence = detector.evidence()
            out.append((phase, sample.ts - phases[phase][0], evidence["kind"], evidence["hard_signals"]))
    return out


def _smi_rows(gpu: str) -> list[tuple[float, dict[str, str]]]:
    """nvidia-smi's rows for ``gpu`` as (epoch seconds, {column: value}); its clock was UTC."""
    with (DATA / gpu / "smi.csv").open() as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    header = [name.split(" [")[0] for name in rows[0]]
    out = []
    for row in rows[1:]:
        when = datetime.datetime.strptime(row[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        out.append((when.timestamp(), dict(zip(header, row))))
    return out


@pytest.mark.parametrize("trace", TRACES)
def test_every_recorded_line_decodes_to_a_sample_with_every_field(trace: str) -> None:
    samples = trace_samples(trace)
    assert len(samples) == SAMPLES[trace]  # the rounds record.py asked for
    assert {(s.host, s.gpu) for s in samples} == {("device", 0)}
    assert len({s.uuid for s in samples}) == 1 and samples[0].uuid.startswith("GPU-")
    observations = np.array([dcgm_observation(s.fields) for s in samples])
    assert not np.isnan(observations).any()  # every statistical and hard-signal field was read
    assert {"DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_MEM_COPY_UTIL"} <= set(samples[0].fields)


def test_the_collector_reads_what_nvidia_smi_reads(gpu: str, samples: list[GpuSample]) -> None:
    times = np.array([s.ts for s in samples])
    pairs: list[tuple[dict[str, str], dict[str, Any]]] = []
    for when, smi in _smi_rows(gpu):
        nearest = int(np.abs(times - when).argmin())
        assert abs(times[nearest] - when) < 0.6
        pairs.append((smi, samples[nearest].fields))
    assert len(pairs) >= 160

    def agree(smi_name: str, field: str, tolerance: float) -> float:
        return float(np.mean([abs(float(smi[smi_name]) - f[field]) <= tolerance for smi, f in pairs]))

    # memory used without the driver's reservation, as nvidia-smi counts it (smi rounds to MiB)
    assert agree("memory.used", "DCGM_FI_DEV_FB_USED", 1.0) == 1.0
    assert agree("memory.total", "DCGM_FI_DEV_FB_TOTAL", 1.0) == 1.0
    assert agree("temperature.gpu", "DCGM_FI_DEV_GPU_TEMP", 1.0) == 1.0
    assert agree("clocks.current.memory", "DCGM_FI_DEV_MEM_CLOCK", 0.0) == 1.0
    assert all(int(smi["clocks_event_reasons.active"], 16) == f["DCGM_FI_DEV_CLOCKS_EVENT_REASONS"] for smi, f in pairs)
    # quantities that move within the 0.35 s between the two readings, at the load's edges
    assert agree("power.draw", "DCGM_FI_DEV_POWER_USAGE", 1.0) >= 0.9
    assert agree("utilization.gpu", "DCGM_FI_DEV_GPU_UTIL", 0.0) >= 0.95
    assert agree("clocks.current.sm", "DCGM_FI_DEV_SM_CLOCK", 0.0) >= 0.85


def test_under_serving_load_the_collector_reads_what_nvidia_smi_reads_phase_by_phase() -> None:
    """Serving changes the load from one request to the next, so readings 0.35 s apart differ
    (utilisation agrees exactly in 67 % of them while serving); each phase's medians agree."""
    samples, phases = trace_samples("h200_serving"), _phases("h200_serving")
    smi_rows = _smi_rows("h200_serving")
    assert len(smi_rows) >= 320
    exact = {"memory.used": "DCGM_FI_DEV_FB_USED", "memory.total": "DCGM_FI_DEV_FB_TOTAL", "clocks.current.memory": "DCGM_FI_DEV_MEM_CLOCK"}
    moving = {"temperature.gpu": "DCGM_FI_DEV_GPU_TEMP", "power.draw": "DCGM_FI_DEV_POWER_USAGE",
              "utilization.gpu": "DCGM_FI_DEV_GPU_UTIL", "clocks.current.sm": "DCGM_FI_DEV_SM_CLOCK"}  # fmt: skip
    for phase, (start, end) in phases.items():
        ours = [s.fields for s in samples if start + 2 <= s.ts < end]
        theirs = [smi for when, smi in smi_rows if start + 2 <= when < end]
        assert len(ours) >= 5 * len(theirs) - 10 and len(theirs) >= 25, phase
        for smi_name, field in {**exact, **moving}.items():
            a, b = np.median([f[field] for f in ours]), np.median([float(smi[smi_name]) for smi in theirs])
            tolerance = 1.0 if smi_name in exact else max(1.0, 0.02 * b)
            assert abs(a - b) <= tolerance, (phase, smi_name, a, b)


def test_the_load_shows_in_the_trace(samples: list[GpuSample], phases: dict[str, tuple[float, float]]) -> None:
    def median(phase: str, field: str) -> float:
        start, end = phases[phase]
        return float(np.median([s.fields[field] for s in samples if start + 2 <= s.ts < end]))

    assert median("idle", "DCGM_FI_DEV_GPU_UTIL") == 0 and median("compute", "DCGM_FI_DEV_GPU_UTIL") >= 99
    assert median("compute", "DCGM_FI_DEV_POWER_USAGE") > 4 * median("idle", "DCGM_FI_DEV_POWER_USAGE")
    fill = median("fill", "DCGM_FI_DEV_FB_USED") / median("fill", "DCGM_FI_DEV_FB_TOTAL")
    assert 0.95 <= fill <= 0.98


def test_gpu_anomaly_alarms_at_each_change_of_the_real_gpu_and_never_while_idle(
    samples: list[GpuSample], phases: dict[str, tuple[float, float]]
) -> None:
    detector = GpuAnomaly()
    alarms = []
    for sample in samples:
        detector.update(dcgm_observation(sample.fields))
        if detector.fired:
            evidence = detector.evidence()
            alarms.append((sample.ts, evidence["kind"], evidence["hard_signals"]))
    starts = {phase: start for phase, (start, _) in phases.items()}
    delays = {}
    for ts, kind, hard in alarms:
        phase = max((p for p in starts if starts[p] <= ts), key=starts.__getitem__)
        assert phase != "idle", f"false alarm at {ts - starts['idle']:.1f} s of the idle phase"
        delays.setdefault(phase, (ts - starts[phase], kind, hard))
    assert set(delays) == {"compute", "cooldown", "fill", "after"}, alarms
    assert all(delay < 1.0 for delay, _, _ in delays.values()), delays  # within 5 samples
    assert delays["compute"][1] == "jump" and delays["cooldown"][1] == "jump"
    assert delays["fill"][1:] == ("hard_signal", ["fb_nearly_full"])
    assert len(alarms) == 4  # one per change


def test_serving_load_alarms_when_it_starts_saturates_and_stops_and_not_in_four_minutes_of_load() -> None:
    """Two minutes of bursty serving (utilisation 8-46 % from one sample to the next) and two
    saturated (the SM clock moving 1,395-1,530 MHz under the power cap, the card heating)
    raise no alarm; the load's start and end do, at once, and so does the change from serving
    to saturated (utilisation 28 -> 99 %, power 370 -> 690 W, SM clock 1,965 -> 1,455 MHz): it
    comes over five samples, each step within the serving noise, so only the level view (steps
    between block medians) sees it, within two seconds."""
    phases = _phases("h200_serving")
    samples = trace_samples("h200_serving")

    def median(phase: str, field: str) -> float:
        start, end = phases[phase]
        return float(np.median([s.fields[field] for s in samples if start + 2 <= s.ts < end]))

    assert 15 <= median("serving", "DCGM_FI_DEV_GPU_UTIL") <= 60 and median("saturated", "DCGM_FI_DEV_GPU_UTIL") >= 99
    assert median("saturated", "DCGM_FI_DEV_POWER_USAGE") > 1.5 * median("serving", "DCGM_FI_DEV_POWER_USAGE")
    assert median("saturated", "DCGM_FI_DEV_SM_CLOCK") < 0.8 * median("serving", "DCGM_FI_DEV_SM_CLOCK")
    found = _alarms(samples, phases)
    assert [(phase, kind) for phase, _, kind, _ in found] == [("serving", "jump"), ("saturated", "level_shift"), ("after", "jump")], found
    assert all(seconds < 2.0 for _, seconds, _, _ in found), found  # within 10 samples
    # Without the level view the saturation is missed.
    plain = []
    detector = GpuAnomaly(block=0)
    for sample in samples:
        detector.update(dcgm_observation(sample.fields))
        plain += [sample.ts] * detector.fired
    assert len(plain) == 2
