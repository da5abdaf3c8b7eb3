"""Which input partition each model's events (each host's GPU samples) arrive on, and those that
arrive on another one.

Inference events must be keyed by model and GPU samples by host (README, "Event
contracts"): then all of a model's events reach one partition, and its detectors live
with that partition's state.  Records of one model that arrive on two partitions (a
producer keying by request id, or not at all) are still processed, but a rebalance can
give the two partitions to two workers, each with detectors of its own for the model,
and the model's state is written to whichever partition came last.  So a record of a
model (host) on another partition than its previous one is counted in
``inferwatch_misrouted_records_total{topic}`` and the first one of each model (host) is
logged with the fix.  A partition count raised on the topic moves a model once: one
record counted.
"""

from __future__ import annotations

import logging

from streams.metrics import Metrics

__all__ = ["Routing"]

log = logging.getLogger(__name__)


class Routing:
    """The input partition of each model (host) whose records this worker has taken."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._partition_of: dict[tuple[str, str], int] = {}  # (kind, name): a model and a host may share a name
        self._warned: set[tuple[str, str]] = set()

    def partition(self, kind: str, name: str) -> int | None:
        """The partition of the last record taken of ``kind`` (``"model"`` or ``"host"``) ``name``, if any."""
        return self._partition_of.get((kind, name))

    def see(self, topic: str, partition: int, kind: str, name: str) -> None:
        """A record of ``kind`` (``"model"`` or ``"host"``) ``name`` taken from ``topic``'s ``partition``."""
        earlier = self._partition_of.get((kind, name))
        self._partition_of[kind, name] = partition
        if earlier is None or earlier == partition:
            return
        self.metrics.misrouted.labels(topic).inc()
        if (kind, name) not in self._warned:
            self._warned.add((kind, name))
            log.warning(
                "records of %r arrive on partitions %d and %d of %s: key each message by its %s, so that its "
                "detectors and their state live on one partition (these are processed, but a rebalance may split them)",
                name, earlier, partition, topic, kind,
            )
