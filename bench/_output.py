"""Shared output of the benchmarks: the result JSON on stdout and, when asked, in a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["emit"]


def emit(result: dict[str, Any], path: Path | None) -> None:
    """Print ``result`` as indented JSON; also write it to ``path`` (parents created) when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
