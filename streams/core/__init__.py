"""The detection graph: a plain, synchronous core from records to alerts.

``Engine`` routes inference events to per-model monitors and GPU samples to
per-host monitors, correlates model incidents with GPU state, and runs the
alert state machine.  The Faust agents (``streams.agents``) and the backtest
(``streams.backtest``) both drive this same core; it does no I/O.
"""

from streams.core.engine import Engine
from streams.core.signals import Signal

__all__ = ["Engine", "Signal"]
