"""Secret scan cost before an upload, measured against plainly reading the same bytes.

Run: .venv/bin/python bench/bench_publish_scan.py [SIZE_MB]
Prints MB/s of a plain read and of `scan_for_secrets` for (a) a safetensors file (weights: header
scanned for key patterns, every byte searched for known secret values) and (b) the real
TslDial dataset (all text: every byte scanned), and their ratio, measured side by side.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from stylewrap.publish.plan import PlannedFile, UploadPlan
from stylewrap.publish.scan import scan_for_secrets

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tsldial" / "TslDial.json"


def _safetensors(path: Path, size_mb: int) -> Path:
    payload = os.urandom(size_mb << 20)
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + payload)
    return path


def _read_all(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(8 << 20):
            pass


def _best_of(runs: int, call) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def measure(path: Path, name: str) -> None:
    size = path.stat().st_size
    plan = UploadPlan("bench/x", "model", True, "mit", [PlannedFile(name, size, source=path)])
    read_s = _best_of(3, lambda: _read_all(path))
    scan_s = _best_of(3, lambda: scan_for_secrets(plan, extra_secrets=[f"ms-{uuid.uuid4()}"]))
    mb = size / 1e6
    print(f"{name:28s} {mb:8.1f} MB  read {mb / read_s:8.0f} MB/s  scan {mb / scan_s:8.0f} MB/s  "
          f"scan/read time {scan_s / read_s:6.1f}x")


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    with tempfile.TemporaryDirectory() as tmp:
        measure(_safetensors(Path(tmp) / "model.safetensors", size_mb), "model.safetensors")
    measure(DATA, "TslDial.json (text)")


if __name__ == "__main__":
    main()
