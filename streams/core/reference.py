"""A model's reference lifecycle beyond the warm-up: baselines and reference commands.

``load_baseline`` gives a version's drift detectors their reference from its
baseline (:mod:`streams.baselines`); ``apply_command`` applies a control-topic
command to one model's state, once per command id:

* ``reset``: restart the change statistics, keep the reference;
* ``relearn``: forget the reference and learn a new one from the next events;
* ``baseline``: take the reference from the version's baseline, read again
  (the latency detectors, windowed, keep learning from live events).

Every change is logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from streams.core.detectors import DetectorFactory
from streams.core.model_monitor import VersionMonitor

if TYPE_CHECKING:
    from streams.baselines import Baselines
    from streams.core.engine import ModelState

__all__ = ["apply_command", "load_baseline"]

log = logging.getLogger(__name__)


def load_baseline(monitor: VersionMonitor, baselines: Baselines | None, warmup: int) -> bool:
    """Give ``monitor``'s drift detectors their reference from its version's baseline, when it has one of
    at least ``warmup`` events (the thresholds are calibrated for a warm-up's reference; a shorter one is
    refused, with a warning).  Whether it did."""
    events = baselines.get(monitor.model, monitor.version) if baselines is not None else None
    if not events:
        return False
    if len(events) < warmup:
        log.warning("%s %s: its baseline holds %d events, fewer than a warm-up's %d (INFERWATCH_WARMUP_EVENTS); "
                    "its reference is learned from live events instead", monitor.model, monitor.version, len(events), warmup)
        return False
    try:
        learned = monitor.learn_baseline(events)
    except Exception:  # a bug here must not cost the live batch (its messages would be dead-lettered)
        log.exception("%s %s: learning from its baseline failed; detectors that had not learned from it learn live",
                      monitor.model, monitor.version)
        return False
    log.info("%s %s: reference loaded from its baseline of %d events, monitoring from its next event: %s",
             monitor.model, monitor.version, len(events), ", ".join(learned) or "none")
    return True


def apply_command(state: ModelState, factory: DetectorFactory, baselines: Baselines | None, command_id: str,
                  action: str, model: str, version: str | None) -> str | None:
    """Apply ``action`` to ``version`` of ``model`` (every version it has when None); what was done, or None
    when ``command_id`` was applied to this state before."""
    if command_id in state.applied_commands:
        return None
    versions = [version] if version else list(state.versions)
    if action == "baseline":
        for v in versions:
            monitor = state.versions.get(v)
            if monitor is None or not load_baseline(monitor, baselines, factory.warmup):
                log.warning("%s %s: no baseline loaded (%s); its reference is unchanged", model, v,
                            "version not seen yet" if monitor is None else "none found, or too short")
    else:
        for v in versions:
            monitor = state.versions.get(v)
            for detector in monitor.detectors() if monitor else []:
                getattr(detector, action)()
        for key in [k for k in state.latency if k[0] in versions]:
            # windowed: a fresh one (warm-up and all) is both reset and relearn; with the version's budget
            state.latency[key] = state.versions[key[0]].factory.latency()
    state.applied_commands = [*state.applied_commands[-99:], command_id]
    message = f"reference {action} applied to {model} versions {', '.join(versions) or '(none yet)'}"
    log.info("%s (command %s)", message, command_id)
    return message
