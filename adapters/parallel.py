"""Whole-file passes over a big JSONL file, one slice per CPU in worker processes.

Parsing and checking rows is CPU-bound Python; a multi-GB JSONL file is cut on line boundaries and
each worker writes its rows to a part file that the parent joins into the atomic output. Workers
number lines from the start of their slice: counting the lines before each slice means reading the
file once more, so the parent does it (`line_shifts`) only when a line number has to be reported.
JSON arrays, files with a BOM and small files take the one-process path.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar

from stylewrap.adapters.jsonstream import byte_ranges, container_of, has_bom, lines_before

# Below this a second process costs more than it saves.
MIN_PARALLEL_BYTES = 16 << 20
MAX_WORKERS = 8
T = TypeVar("T")


def workers_for(path: str | Path) -> int:
    path = Path(path)
    if path.stat().st_size < MIN_PARALLEL_BYTES or container_of(path) != "lines" or has_bom(path):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


@dataclass
class Slice(Generic[T]):
    result: T
    part: Path
    start: int  # byte offset of the slice in the input


def map_slices(worker: Callable[..., T], path: Path, workers: int, parts_dir: Path, *args) -> list[Slice[T]]:
    """worker(path, (start, end), part_file, *args) for each slice, in file order; lines numbered from 1 in each."""
    ranges = byte_ranges(path, workers)
    parts = [parts_dir / f"{index}.part" for index in range(len(ranges))]
    count = len(ranges)
    with ProcessPoolExecutor(count) as pool:
        results = list(pool.map(worker, [str(path)] * count, ranges, [str(p) for p in parts], *[[arg] * count for arg in args]))
    return [Slice(result, part, start) for result, part, (start, _) in zip(results, parts, ranges)]


def line_shifts(path: Path, slices: list[Slice]) -> list[int]:
    """What to add to each slice's line numbers to make them the file's."""
    return lines_before(path, [piece.start for piece in slices])
