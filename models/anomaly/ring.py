"""A fixed-size ring of floats: the last ``size`` values appended, pickled without its empty part."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["Ring"]


class Ring:
    """The last ``size`` floats appended (a numpy buffer written in a circle).

    >>> r = Ring(3)
    >>> for v in (1.0, 2.0, 3.0, 4.0):
    ...     r.append(v)
    >>> r.values().tolist(), r.ago(1), r.ago(3), len(r)
    ([2.0, 3.0, 4.0], 4.0, 2.0, 3)
    """

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        kept = np.fromiter(values, float)[-size:] if size > 0 else np.zeros(0)
        self.size = size
        self._buf = np.zeros(size)
        self._buf[: kept.size] = kept
        self._len = kept.size
        self._end = kept.size % size if size else 0  # where the next value goes

    def __len__(self) -> int:
        return self._len

    def append(self, v: float) -> None:
        self._buf[self._end] = v
        self._end = (self._end + 1) % self.size
        self._len = min(self._len + 1, self.size)

    def ago(self, lag: int) -> float:
        """The value appended ``lag`` appends ago (1: the last one); ``lag`` at most ``len(self)``."""
        return float(self._buf[self._end - lag])  # a negative index counts from the buffer's end

    def values(self) -> np.ndarray:
        """The values kept, oldest first (a copy)."""
        if self._len < self.size:
            return self._buf[: self._len].copy()
        return np.roll(self._buf, -self._end)

    def remap(self, f: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace every value kept by ``f`` of it (elementwise)."""
        self._buf[: self._len] = f(self._buf[: self._len])

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "values": self.values()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"], state["values"])  # type: ignore[misc]
