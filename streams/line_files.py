"""JSON-lines files as inferwatch's file tools read them: plain, or gzip-compressed by name."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["numbered_lines", "open_lines"]


def open_lines(path: Path) -> IO[bytes]:
    """A JSONL file, gzip-compressed when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number from 1, line without its end)`` of every line that is not empty."""
    with open_lines(path) as handle:
        for n, line in enumerate(handle, 1):
            line = line.rstrip(b"\r\n")
            if line:
                yield n, line
