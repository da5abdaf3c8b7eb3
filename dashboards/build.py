"""Build the dashboards' JSON, write it to ``dashboards/generated/`` and tell when the
committed files are stale.

The generated JSON is committed (for Grafana file provisioning and review) and a
test fails when it differs from a fresh build: change the Python, then run
``inferwatch dashboards build``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboards import drift, gpu, model

__all__ = ["BUILDERS", "GENERATED", "build_all", "render", "stale", "write"]

#: Where ``write()`` puts the JSON by default (what provisioning mounts).
GENERATED = Path(__file__).resolve().parent / "generated"

#: File name -> function building that dashboard.
BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "inferwatch-model.json": model.build,
    "inferwatch-drift.json": drift.build,
    "inferwatch-gpu.json": gpu.build,
}


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard, keyed by its file name."""
    return {name: build() for name, build in BUILDERS.items()}


def render(dashboard: dict[str, Any]) -> str:
    """The exact text written for a dashboard: sorted keys, 2-space indent, final newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = GENERATED) -> list[Path]:
    """Write every dashboard into ``directory`` (created if missing); return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, dashboard in build_all().items():
        path = directory / name
        path.write_text(render(dashboard), encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: Path = GENERATED) -> list[str]:
    """File names in ``directory`` that are missing, differ from a fresh build, or are not built any more."""
    directory = Path(directory)
    built = build_all()
    out = []
    for name, dashboard in built.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(dashboard):
            out.append(name)
    if directory.is_dir():
        out.extend(sorted(p.name for p in directory.glob("*.json") if p.name not in built))
    return out
