"""Whole-file passes over a big JSONL file, one slice per CPU in worker processes.

Parsing and checking rows is CPU-bound Python; a multi-GB JSONL file is cut on line boundaries
(line numbers counted up front, so every worker reports real file:line) and each worker writes its
rows to a part file that the parent joins into the atomic output. JSON arrays, files with a BOM
and small files take the one-process path.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

from stylewrap.adapters.jsonstream import container_of, has_bom, line_ranges

# Below this a second process costs more than it saves.
MIN_PARALLEL_BYTES = 16 << 20
MAX_WORKERS = 8
T = TypeVar("T")


def workers_for(path: str | Path) -> int:
    path = Path(path)
    if path.stat().st_size < MIN_PARALLEL_BYTES or container_of(path) != "lines" or has_bom(path):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def map_slices(worker: Callable[..., T], path: Path, workers: int, parts_dir: Path, *args) -> list[tuple[T, Path]]:
    """worker(path, (start, end, first_line), part_file, *args) for each slice, in file order."""
    ranges = line_ranges(path, workers)
    parts = [parts_dir / f"{index}.part" for index in range(len(ranges))]
    count = len(ranges)
    with ProcessPoolExecutor(count) as pool:
        results = list(pool.map(worker, [str(path)] * count, ranges, [str(p) for p in parts], *[[arg] * count for arg in args]))
    return list(zip(results, parts))
