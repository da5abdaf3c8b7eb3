"""False-alarm budget: the single setting from which every threshold follows.

The user states how many false alarms per million events one detector may
raise on a stream with no change.  Each detector turns that into its threshold,
from theory (e.g. Siegmund's approximation of a CUSUM's average run length) or
by simulation on its reference data; this module holds the shared conversions.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FalseAlarmBudget", "DEFAULT_BUDGET"]


@dataclass(frozen=True, slots=True)
class FalseAlarmBudget:
    """Expected false alarms per million events, per detector, with no change.

    >>> FalseAlarmBudget(1.0).arl
    1000000.0
    >>> FalseAlarmBudget.per_day(2.0, events_per_second=10.0).per_million
    2.314814814814815
    """

    per_million: float = 1.0

    def __post_init__(self) -> None:
        if not (self.per_million > 0 and self.per_million < 1e6):
            raise ValueError(f"per_million must be in (0, 1e6), got {self.per_million!r}")

    @property
    def arl(self) -> float:
        """Average run length to a false alarm, in events."""
        return 1e6 / self.per_million

    @property
    def alpha(self) -> float:
        """Per-event false-alarm probability (for fixed-sample tests run every event)."""
        return self.per_million / 1e6

    @classmethod
    def per_day(cls, alarms_per_day: float, events_per_second: float) -> FalseAlarmBudget:
        """Budget from alarms per day at a given event rate."""
        if alarms_per_day <= 0 or events_per_second <= 0:
            raise ValueError("alarms_per_day and events_per_second must be > 0")
        return cls(per_million=alarms_per_day * 1e6 / (events_per_second * 86_400.0))


#: The default: at most one false alarm per million events per detector.
DEFAULT_BUDGET = FalseAlarmBudget(1.0)
