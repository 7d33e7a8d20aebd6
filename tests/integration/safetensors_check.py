"""Read tensor names from a .safetensors header (8-byte length + JSON) without torch."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def tensor_names(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return [name for name in header if name != "__metadata__"]


def float32_tensors(path: Path) -> dict[str, list[float]]:
    """Every F32 tensor of a .safetensors file, flattened (the format: header, then raw little-endian data)."""
    from array import array

    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        data = handle.read()
    out = {}
    for name, spec in header.items():
        if name != "__metadata__" and spec["dtype"] == "F32":
            start, end = spec["data_offsets"]
            values = array("f")
            values.frombytes(data[start:end])
            out[name] = values.tolist()
    return out
