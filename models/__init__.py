"""Online detection models for inferwatch.

Every detector follows :class:`models.base.Detector`: ``update(x)`` /
``update_many(xs)`` learn; ``score``, ``threshold``, ``fired`` and
``evidence()`` read results; ``snapshot()`` / ``restore()`` persist state;
``clone()`` gives a fresh copy with the same parameters.  Thresholds come from
one setting, :class:`models.calibration.FalseAlarmBudget`.

Subpackages: ``models.drift`` (input, confidence and prediction drift),
``models.anomaly`` (latency / metric and GPU anomalies).
"""

from models.base import Detector
from models.calibration import DEFAULT_BUDGET, FalseAlarmBudget

__all__ = ["DEFAULT_BUDGET", "Detector", "FalseAlarmBudget"]
