"""Which GPU of a host an inference event ran on, when it names the GPU by UUID only.

A pod on Kubernetes knows its GPU's UUID (``NVIDIA_VISIBLE_DEVICES``) and its node, but
not the GPU's index on that node (inside the container it is 0).  The GPU samples name
both, so the shared GPU state rows (``GpuState``: host, index, UUID) map one to the other.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.core.gpu_monitor import GpuState

__all__ = ["GpuIndexByUuid"]


class GpuIndexByUuid:
    """The index of a GPU given its host and UUID, read from the GPU state rows.

    The map is rebuilt from ``states`` when a UUID is not in it (or is on another host), at
    most once per :meth:`next_batch`: a UUID no GPU sample has named yet costs one pass over
    the rows per batch, not per event.
    """

    def __init__(self, states: Mapping[str, GpuState]) -> None:
        self.states = states
        self._by_uuid: dict[str, tuple[str, str]] = {}
        self._fresh = False

    def next_batch(self) -> None:
        """Allow one rebuild for the next batch's misses."""
        self._fresh = False

    def index(self, host: str, uuid: str) -> str | None:
        """The GPU index of ``uuid`` on ``host`` (``None``: no GPU sample of ``host`` has named it)."""
        found = self._by_uuid.get(uuid)
        if (found is None or found[0] != host) and not self._fresh:
            self._by_uuid = {s.uuid: (s.host, s.gpu) for s in self.states.values() if s.uuid}
            self._fresh = True
            found = self._by_uuid.get(uuid)
        return found[1] if found is not None and found[0] == host else None
