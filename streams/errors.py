"""The root exception of inferwatch and the decoding rejection."""

from __future__ import annotations

__all__ = ["InferwatchError", "Rejected"]


class InferwatchError(Exception):
    """Root of every error inferwatch raises on purpose."""


class Rejected(InferwatchError):
    """A message that cannot be turned into a record.

    ``reason`` is a short stable code (used as a metric label and in the
    dead-letter record); ``detail`` explains it to a human.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
