"""JSON Schema files for producers, generated from the records in ``streams.records``.

``build_schemas()`` returns ``{file name: schema}``; ``write_schemas(dir)``
writes them and ``stale_schemas(dir)`` lists files that differ from a fresh
build (the CLI ``inferwatch schemas [--check]`` and a test use these).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from streams.records import Alert, GpuSample, InferenceEvent

__all__ = ["SCHEMA_DIR", "build_schemas", "stale_schemas", "write_schemas"]

SCHEMA_DIR = Path(__file__).with_name("schemas")


def _struct_schema(cls: type, drop: tuple[str, ...], title: str, description: str) -> dict[str, Any]:
    """The struct's own JSON Schema, inlined, without the fields in ``drop``."""
    full = msgspec.json.schema(cls)
    name = full["$ref"].rsplit("/", 1)[1]
    schema = dict(full["$defs"][name])
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in drop}
    schema["required"] = [k for k in schema.get("required", []) if k not in drop]
    schema.pop("title", None)
    if "ts" in schema["properties"]:
        schema["properties"]["ts"]["description"] = "Epoch seconds (ms/us/ns told apart by magnitude) or RFC 3339 with offset."
    schema.update({"title": title, "description": description})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def build_schemas() -> dict[str, dict[str, Any]]:
    """Every producer-facing schema, keyed by file name."""
    inference = _struct_schema(
        InferenceEvent,
        ("extra",),
        "inferwatch inference event",
        "One inference request on the inference topic (key = model). Unknown fields are kept.",
    )
    inference["additionalProperties"] = True
    gpu = _struct_schema(
        GpuSample,
        ("fields", "labels"),
        "inferwatch GPU sample",
        "One sample of one GPU on the GPU topic (key = host); DCGM field names as extra keys.",
    )
    gpu["additionalProperties"] = {"type": ["number", "string", "boolean", "null"]}
    alert = _struct_schema(Alert, (), "inferwatch alert", "One alert record on the alerts topic.")
    return {"inference_event.json": inference, "gpu_sample.json": gpu, "alert.json": alert}


def _render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in build_schemas().items():
        path = directory / name
        path.write_text(_render(schema))
        paths.append(path)
    return paths


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from a fresh build."""
    return [
        name
        for name, schema in build_schemas().items()
        if not (directory / name).is_file() or (directory / name).read_text() != _render(schema)
    ]
