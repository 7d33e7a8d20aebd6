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
