"""GPU alerts from the detection core on the real H200 and H100 traces: the same alerts however the samples
are batched, a critical hard signal escalates an open warning instead of disappearing into it, and within
a GPU's warm-up only hard signals page."""

from __future__ import annotations

import time

import pytest

from streams.core import Engine
from streams.records import Alert, GpuSample
from streams.settings import Settings
from tests.unit.test_nvml_trace import GPUS, trace_samples

# gpu_grace_seconds 15 (default); the traces' job starts 75 s (374 samples) in, after a warm-up of 100 samples
SETTINGS = Settings(resolve_after_seconds=30.0, gpu_warmup_samples=100)


@pytest.fixture(scope="module", params=GPUS)
def samples(request: pytest.FixtureRequest) -> list[GpuSample]:
    return trace_samples(request.param)


def _alerts(samples: list[GpuSample], batch: int, settings: Settings = SETTINGS) -> list[Alert]:
    engine = Engine(settings)
    alerts = [a for i in range(0, len(samples), batch) for a in engine.on_samples(samples[i : i + batch]).alerts]
    return alerts + engine.tick(time.time() + 3600).alerts  # an hour of wall clock later: everything settles


def _summary(alerts: list[Alert], t0: float) -> list[tuple[str, str, float, float | None, str]]:
    return [(a.status, a.severity, round(a.starts_at - t0, 1), a.ends_at and round(a.ends_at - t0, 1), a.statistic) for a in alerts]


def test_gpu_alerts_do_not_depend_on_how_samples_are_batched(samples: list[GpuSample]) -> None:
    # a worker catching up gets hundreds of samples per batch; one keeping up gets a few
    expected = _summary(_alerts(samples, 1), samples[0].ts)
    for batch in (7, 50, len(samples)):
        assert _summary(_alerts(samples, batch), samples[0].ts) == expected, batch


#: Alerts per trace as (status, severity, starts, ends, statistic), seconds after the first sample.
#: Detector fires: job start (75.1 on the H200, 75.2 on the H100), job end (115.5, 115.3),
#: framebuffer full 140.1 / 140.2 (hard), its release 155.2 / 155.3.
EXPECTED = {
    "h200": [
        ("firing", "warning", 75.1, None, "multivariate"),
        ("resolved", "warning", 75.1, 105.1, "multivariate"),  # quiet for resolve_after = 30 s
        ("firing", "warning", 115.5, None, "multivariate"),
        ("resolved", "warning", 115.5, 140.1, "multivariate"),  # replaced by the critical one...
        ("firing", "critical", 140.1, None, "fb_nearly_full"),  # ...published after the 15 s grace
        ("resolved", "critical", 140.1, 185.2, "multivariate"),  # the release at 155.2 kept it open; resolved as it fired
    ],
    "h100": [  # the job end is seen although the job's own start (utilisation 0, 1, 0, 99) is in its references
        ("firing", "warning", 75.2, None, "multivariate"),
        ("resolved", "warning", 75.2, 105.2, "multivariate"),
        ("firing", "warning", 115.3, None, "multivariate"),
        ("resolved", "warning", 115.3, 140.2, "multivariate"),
        ("firing", "critical", 140.2, None, "fb_nearly_full"),
        ("resolved", "critical", 140.2, 185.3, "multivariate"),
    ],
}


@pytest.mark.parametrize("gpu", GPUS)
def test_a_critical_hard_signal_escalates_the_open_warning(gpu: str) -> None:
    samples = trace_samples(gpu)
    assert _summary(_alerts(samples, 50), samples[0].ts) == EXPECTED[gpu]


@pytest.mark.parametrize("gpu", GPUS)
def test_within_the_default_warmup_only_the_hard_signal_pages(gpu: str) -> None:
    # The traces' 825 samples all fall within INFERWATCH_GPU_WARMUP_SAMPLES (1,000): the job's start and
    # end, and the framebuffer's release, are learned, not raised; the framebuffer filling up is a hard
    # signal and pages at once, then resolves after 30 s of quiet (the release no longer keeps it open).
    samples = trace_samples(gpu)
    assert Settings().gpu_warmup_samples == 1000
    fb_full = {"h200": 140.1, "h100": 140.2}[gpu]
    assert _summary(_alerts(samples, 50, Settings(resolve_after_seconds=30.0)), samples[0].ts) == [
        ("firing", "critical", fb_full, None, "fb_nearly_full"),
        ("resolved", "critical", fb_full, round(fb_full + 30.0, 1), "fb_nearly_full"),
    ]
