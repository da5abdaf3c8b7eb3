"""Open Inference Protocol (KServe v2) tensors: ``{name, shape, datatype, data}``.

A tensor's first dimension is the batch.  ``tensor_rows`` checks that shape,
datatype and data agree and returns one list of values per batch row.
"""

from __future__ import annotations

import math
from typing import Any

from streams.decoding.reasons import reject

__all__ = ["DATATYPES", "Tensor", "parse_tensors"]

#: OIP datatypes and the Python type their elements must have.
DATATYPES: dict[str, type | tuple[type, ...]] = {
    "BOOL": bool,
    "BYTES": str,
    **{t: int for t in ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")},
    **{t: (int, float) for t in ("FP16", "FP32", "FP64", "BF16")},
}


#: Value range of each OIP integer datatype.
_INT_RANGES: dict[str, tuple[int, int]] = {
    **{f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)},
    **{f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
}


class Tensor:
    """A validated tensor: ``rows[b]`` is the flat list of values of batch row ``b``."""

    __slots__ = ("datatype", "name", "rows", "shape")

    def __init__(self, name: str, shape: list[int], datatype: str, rows: list[list[Any]]) -> None:
        self.name = name
        self.shape = shape
        self.datatype = datatype
        self.rows = rows

    @property
    def width(self) -> int:
        """Values per batch row."""
        return math.prod(self.shape[1:]) if len(self.shape) > 1 else 1


def parse_tensors(body: Any, key: str) -> list[Tensor]:
    """Validate ``body[key]`` (``inputs`` or ``outputs``) as a list of OIP tensors."""
    if not isinstance(body, dict):
        raise reject("bad_tensor", f"OIP body is not a JSON object (got {type(body).__name__})")
    tensors = body.get(key)
    if not isinstance(tensors, list) or not tensors:
        raise reject("bad_tensor", f"OIP body has no {key!r} list of tensors")
    return [_tensor(t, f"{key}[{i}]") for i, t in enumerate(tensors)]


def _tensor(obj: Any, where: str) -> Tensor:
    if not isinstance(obj, dict):
        raise reject("bad_tensor", f"{where} is not an object")
    name, shape, datatype, data = (obj.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not name:
        raise reject("bad_tensor", f"{where} has no name")
    if not isinstance(shape, list) or not shape or not all(_is_dim(d) for d in shape):
        raise reject("bad_tensor", f"{where} ({name}) shape {shape!r} is not a list of non-negative integers")
    if datatype not in DATATYPES:
        raise reject("bad_tensor", f"{where} ({name}) datatype {datatype!r}; valid: {', '.join(DATATYPES)}")
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise reject("bad_tensor", f"{where} ({name}) shape {shape} needs {math.prod(shape)} values, data has {len(flat)}")
    want, (low, high) = DATATYPES[datatype], _INT_RANGES.get(datatype, (None, None))
    for value in flat:
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            raise reject("bad_tensor", f"{where} ({name}) {datatype} tensor holds {value!r}")
        if low is not None and not low <= value <= high:
            raise reject("bad_tensor", f"{where} ({name}) {datatype} tensor holds {value!r}, outside [{low}, {high}]")
    batch = shape[0]
    width = len(flat) // batch if batch else 0
    rows = [flat[b * width : (b + 1) * width] for b in range(batch)]
    return Tensor(name, shape, datatype, rows)


def _is_dim(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d >= 0


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise reject("bad_tensor", f"tensor data must be a list, got {type(data).__name__}")
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out
