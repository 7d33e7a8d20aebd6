"""Whole-file operations: convert, dedup, split and sample. All streaming, all writes atomic."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from stylewrap.adapters.files import (
    Problem,
    RowSink,
    detect_format,
    format_named,
    join_fragments,
    output_container,
    read_records,
    row_line,
    scan_lines,
    unwritable,
    write_records,
)
from stylewrap.adapters.jsonstream import dump_row
from stylewrap.adapters.parallel import Slice, line_shifts, map_slices, workers_for
from stylewrap.adapters.progress import with_progress
from stylewrap.adapters.records import Record, RowProblem
from stylewrap.adapters.stats import record_key
from stylewrap.adapters.typedrows import DIRECT_WRITERS, TYPED_FORMATS
from stylewrap.errors import DataError, InputError, Location
from stylewrap.fsutil import atomic_writer


def _read(path: Path, fmt: str | None, label: str, **read_options) -> tuple[str, Iterator[Record]]:
    fmt = fmt or detect_format(path)
    return fmt, with_progress(read_records(path, fmt, **read_options), f"{label} {path.name}")


def convert(path: str | Path, output: str | Path, to: str, fmt: str | None = None, **read_options) -> int:
    """Rewrite `path` as format `to` at `output`; returns rows written.

    `read_options` go to the input format's reader (e.g. sharegpt role tags: user_tag="user").

    A big JSONL input is converted in one process per CPU (see `parallel`); the result is the same.
    """
    path, output = Path(path), Path(output)
    format_named(to)
    _check_distinct(path, output)
    fmt = fmt or detect_format(path)
    workers = workers_for(path)
    if workers == 1:
        return write_records(_read(path, fmt, "converting", **read_options)[1], output, to)
    as_array = output_container(output) == "array"
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as parts_dir:
        slices = map_slices(_convert_slice, path, workers, Path(parts_dir), fmt, to, as_array, read_options)
        for piece, shift in zip(slices, _shifts_up_to_failure(path, slices)):
            failure = piece.result[1]
            if failure is None:
                continue
            kind, line, message, field = failure
            if kind == "record":
                raise unwritable(to, output, line + shift, RowProblem(field, message))
            raise DataError(message, location=Location(path, line + shift, field))
        parts = [(piece.part, piece.result[0]) for piece in slices]
        if as_array:
            with atomic_writer(output, "wb") as handle:
                return join_fragments(handle, parts, as_array)
        # JSON Lines: the first part becomes the output and the others are appended (not all copied)
        with atomic_writer(output, "wb", start_from=parts[0][0]) as handle:
            return parts[0][1] + join_fragments(handle, parts[1:], as_array)


def _shifts_up_to_failure(path: Path, slices: list[Slice]) -> list[int]:
    """Line shifts of the slices up to the first that failed (none when all converted)."""
    failed = [index for index, piece in enumerate(slices) if piece.result[1] is not None]
    return line_shifts(path, slices[: failed[0] + 1]) if failed else []


def _convert_slice(path: str, byte_range: tuple[int, int], part: str, fmt: str, to: str, as_array: bool, read_options: dict):
    """Worker: convert one slice into a fragment file.

    Returns (rows, None), or (rows, (kind, line, message, field)) at the first row that cannot be
    read (kind "row") or written as `to` (kind "record"); the line is counted from the slice start.
    """
    write_row = format_named(to).write_row
    typed = TYPED_FORMATS.get(fmt)  # None: every line comes as a (RawRow, item) pair
    direct = DIRECT_WRITERS.get((fmt, to))
    with open(part, "wb") as handle:
        sink = RowSink(handle, as_array, fragment=True)
        for entry in scan_lines(path, fmt, byte_range, **read_options):
            if type(entry) is list:  # rows proved valid (typedblocks, or typedrows line by line)
                if direct is not None:
                    try:
                        sink.add_many(list(map(direct, entry)))
                        continue
                    except RowProblem:
                        pass  # the writer below names the row and the problem
                items = list(map(typed.record, entry))
            else:
                item = entry[1]
                if isinstance(item, Problem):
                    return sink.count, ("row", item.line, item.message, item.field)
                items = [item]
            for item in items:
                try:
                    sink.add(dump_row(write_row(item)))
                except RowProblem as exc:
                    line = item.line or row_line(path, byte_range, sink.count)
                    return sink.count, ("record", line, exc.message, exc.field)
        sink.close()
    return sink.count, None


def _check_distinct(source: Path, *outputs: Path) -> None:
    for output in outputs:
        if output.exists() and output.resolve() == source.resolve():
            raise InputError(f"{output}: the output would overwrite the input", hint="pick another output path")


@dataclass
class DedupResult:
    rows: int
    kept: int

    @property
    def dropped(self) -> int:
        return self.rows - self.kept


def dedup(
    path: str | Path, output: str | Path, fmt: str | None = None, *, to: str | None = None, normalized: bool = False, prompt_only: bool = False
) -> DedupResult:
    """Keep the first of each group of equal records (or equal prompts), in file order.

    `normalized` compares text after NFKC, case folding and dropping whitespace/punctuation.
    """
    path, output = Path(path), Path(output)
    _check_distinct(path, output)
    fmt, records = _read(path, fmt, "deduplicating")
    seen: set[int] = set()
    counts = {"rows": 0}

    def unique() -> Iterator[Record]:
        for record in records:
            counts["rows"] += 1
            key = record_key(record, normalized=normalized, prompt_only=prompt_only)
            if key not in seen:
                seen.add(key)
                yield record

    kept = write_records(unique(), output, to or fmt)
    return DedupResult(counts["rows"], kept)


def split(
    path: str | Path, train: str | Path, val: str | Path, *, val_size: float, seed: int = 0, fmt: str | None = None, to: str | None = None
) -> tuple[int, int]:
    """A seeded train/val split; `val_size` is a fraction (<1) or a row count (>=1). Two streaming passes."""
    path, train, val = Path(path), Path(train), Path(val)
    _check_distinct(path, train, val)
    fmt = fmt or detect_format(path)
    total = sum(1 for _ in _read(path, fmt, "counting")[1])
    wanted = int(val_size) if val_size >= 1 else round(total * val_size)
    if val_size <= 0 or wanted >= total:
        raise InputError(f"val size {val_size} leaves no training rows out of {total}", hint="use a fraction in (0, 1) or a smaller count")
    val_rows = set(random.Random(seed).sample(range(total), wanted))
    # the val file is written first while train rows stream into a second pass
    write_records((r for i, r in enumerate(read_records(path, fmt)) if i in val_rows), val, to or fmt)
    train_count = write_records((r for i, r in enumerate(_read(path, fmt, "splitting")[1]) if i not in val_rows), train, to or fmt)
    return train_count, wanted


def sample(path: str | Path, output: str | Path, n: int, *, seed: int = 0, fmt: str | None = None, to: str | None = None) -> int:
    """`n` rows chosen uniformly with a seeded reservoir, written in their original order."""
    path, output = Path(path), Path(output)
    _check_distinct(path, output)
    if n < 1:
        raise InputError(f"sample size must be at least 1, got {n}")
    fmt, records = _read(path, fmt, "sampling")
    rng = random.Random(seed)
    reservoir: list[tuple[int, Record]] = []
    for index, record in enumerate(records):
        if index < n:
            reservoir.append((index, record))
        else:
            slot = rng.randrange(index + 1)
            if slot < n:
                reservoir[slot] = (index, record)
    reservoir.sort(key=lambda pair: pair[0])
    return write_records((record for _, record in reservoir), output, to or fmt)
