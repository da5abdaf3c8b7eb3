"""A GPU detector's repeats (crossings held back within an incident) keep the GPU anomalous and its
alert open; a unit test of ``HostMonitor.process`` with a scripted detector."""

from __future__ import annotations

from typing import Any

from streams.core.gpu_monitor import HostMonitor
from streams.records import GpuSample


class ScriptedDetector:
    """Fires, repeats (crosses without firing) or stays quiet as ``script`` says, one letter per sample."""

    threshold = 1.0

    def __init__(self, script: str) -> None:
        self.script, self.n = script, -1

    def update(self, observation: Any) -> None:
        self.n += 1

    @property
    def fired(self) -> bool:
        return self.script[self.n] == "F"

    @property
    def crossed(self) -> bool:
        return self.script[self.n] in "FR"

    @property
    def score(self) -> float:
        return 0.5 if self.crossed else 0.1

    def evidence(self) -> dict[str, Any]:
        return {"score": self.score}


class ScriptedFactory:
    def __init__(self, script: str) -> None:
        self.script = script

    def gpu(self) -> ScriptedDetector:
        return ScriptedDetector(self.script)


def samples(n: int) -> list[GpuSample]:
    return [GpuSample(ts=1000.0 + i, host="node-1", gpu=0, fields={"DCGM_FI_DEV_GPU_UTIL": 50.0}) for i in range(n)]


def test_repeats_keep_the_gpu_anomalous_and_are_returned_apart_from_new_alarms() -> None:
    monitor = HostMonitor("node-1", ScriptedFactory("..F..R..R" + "." * 80), quiet_after=60.0)
    states, signals, repeats = monitor.process(samples(10))
    assert [s.ts for s in signals] == [1002.0]
    assert [s.ts for s in repeats] == [1005.0, 1008.0]
    assert all(r.fingerprint == signals[0].fingerprint for r in repeats)  # the same alert's identity
    (state,) = states
    assert state.anomalous_since == 1002.0 and state.last_fired == 1008.0
    monitor.process(samples(80)[10:67])  # quiet: 59 s after the last repeat the GPU is still anomalous
    assert monitor.states["0"].anomalous_since == 1002.0
    monitor.process(samples(80)[67:69])  # 60 s after it, no longer
    assert monitor.states["0"].anomalous_since is None


def test_a_repeat_before_any_alarm_is_not_an_incident() -> None:
    monitor = HostMonitor("node-1", ScriptedFactory("R" + "." * 9), quiet_after=60.0)
    states, signals, repeats = monitor.process(samples(10))
    assert signals == [] and repeats == []
    assert states[0].anomalous_since is None and states[0].last_fired is None
