"""Which detectors watch what, built with the settings' budget and warm-up: one place."""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.anomaly import GpuAnomaly, LatencyAnomaly
from models.calibration import FalseAlarmBudget
from models.drift import CategoricalDrift, ConfidenceDrift, MissingRate, MultivariateDrift, NumericDrift, PredictionDrift
from models.drift.categorical import windows_for

__all__ = ["DetectorFactory"]


@dataclass(frozen=True, slots=True)
class DetectorFactory:
    """Builds every detector of a model or GPU with one false-alarm budget and warm-up (events per
    model version, latency per version and host; ``gpu_warmup`` samples per GPU)."""

    false_alarms_per_million: float = 1.0
    warmup: int = 2000
    latency_whiten: bool = True
    latency_floor: bool = True
    gpu_warmup: int = 1000

    @property
    def budget(self) -> FalseAlarmBudget:
        return FalseAlarmBudget(self.false_alarms_per_million)

    def with_budget(self, false_alarms_per_million: float) -> DetectorFactory:
        """The same factory with another budget per detector."""
        return replace(self, false_alarms_per_million=false_alarms_per_million)

    def numeric(self, features: tuple[str, ...]) -> NumericDrift:
        return NumericDrift(warmup=self.warmup, budget=self.budget, features=features)

    def missing(self, features: tuple[str, ...]) -> MissingRate:
        return MissingRate(warmup=self.warmup, budget=self.budget, features=features)

    def multivariate(self, features: tuple[str, ...]) -> MultivariateDrift:
        return MultivariateDrift(warmup=self.warmup, budget=self.budget, features=features)

    def categorical(self) -> CategoricalDrift:
        return CategoricalDrift(warmup=self.warmup, budget=self.budget, windows=windows_for(self.warmup))

    def confidence(self) -> ConfidenceDrift:
        return ConfidenceDrift(warmup=self.warmup, budget=self.budget)

    def prediction(self) -> PredictionDrift:
        return PredictionDrift(warmup=self.warmup, budget=self.budget, windows=windows_for(self.warmup))

    def latency(self) -> LatencyAnomaly:
        return LatencyAnomaly(budget=self.budget, whiten=self.latency_whiten, floor=self.latency_floor, warmup=self.warmup)

    def gpu(self) -> GpuAnomaly:
        return GpuAnomaly(budget=self.budget, warmup=self.gpu_warmup)
