"""Shared output of the benchmarks: the result JSON on stdout and, when asked, in a file;
progress lines on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["emit", "progress_log"]


def progress_log(bench: str) -> Callable[[str], None]:
    """A function printing ``[bench HH:MM:SS] message`` lines to stderr (flushed: progress of long runs)."""

    def log(msg: str) -> None:
        print(f"[{bench} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


def emit(result: dict[str, Any], path: Path | None) -> None:
    """Print ``result`` as indented JSON; also write it to ``path`` (parents created) when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
