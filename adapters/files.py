"""Read and write dataset files in any registered format, streaming, with file:line:field errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from stylewrap.adapters.formats import FORMATS, Format
from stylewrap.adapters.jsonstream import RawRow, container_of, iter_raw_rows
from stylewrap.adapters.records import Record, RowProblem
from stylewrap.errors import DataError, Location
from stylewrap.fsutil import atomic_writer

DETECT_ROWS = 5


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one row (or with the whole file when `fatal`)."""

    file: str
    line: int
    field: str | None
    message: str
    fatal: bool = False

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.field)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def error(self) -> DataError:
        return DataError(self.message, location=self.location)


def format_named(name: str) -> Format:
    if name not in FORMATS:
        raise DataError(f"unknown format {name!r}", hint=f"choose one of: {', '.join(sorted(FORMATS))}")
    return FORMATS[name]


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError("no such file", location=Location(path))


def detect_format(path: str | Path) -> str:
    """The name of the format of `path`, judged from its first rows."""
    path = Path(path)
    _check_exists(path)
    seen = 0
    for raw in iter_raw_rows(path):
        if raw.error is not None:
            if raw.field == "BOM":
                continue
            raise DataError(raw.error, location=Location(path, raw.line, raw.field))
        if not isinstance(raw.value, dict):
            raise DataError(f"a row must be a JSON object, got {type(raw.value).__name__}", location=Location(path, raw.line))
        for fmt in FORMATS.values():
            if fmt.detect(raw.value):
                return fmt.name
        seen += 1
        last = (raw.line, ", ".join(sorted(raw.value)) or "none")
        if seen >= DETECT_ROWS:
            break
    if seen == 0:
        raise DataError("the file has no rows", location=Location(path))
    raise DataError(
        f"cannot tell the format from the columns ({last[1]})",
        location=Location(path, last[0]),
        hint=f"pass --format, one of: {', '.join(sorted(FORMATS))}",
    )


def scan(path: str | Path, fmt: str | None = None, **options) -> Iterator[Record | Problem]:
    """Every row of `path` as a Record, or a Problem for a row that is not valid; streaming."""
    for _, item in scan_rows(path, fmt, **options):
        yield item


def scan_rows(path: str | Path, fmt: str | None = None, **options) -> Iterator[tuple[RawRow, Record | Problem]]:
    """Like `scan`, with the parsed row each Record or Problem came from."""
    path = Path(path)
    fmt_name = fmt or detect_format(path)
    read_row = format_named(fmt_name).read_row
    name = str(path)
    for raw in iter_raw_rows(path):
        if raw.error is not None:
            yield raw, Problem(name, raw.line, raw.field, raw.error, raw.fatal)
            continue
        yield raw, _to_record(raw, read_row, name, options)


def _to_record(raw: RawRow, read_row, name: str, options: dict) -> Record | Problem:
    if not isinstance(raw.value, dict):
        return Problem(name, raw.line, None, f"a row must be a JSON object, got {type(raw.value).__name__}")
    try:
        record = read_row(raw.value, **options)
    except RowProblem as exc:
        return Problem(name, raw.line, exc.field, exc.message)
    record.line = raw.line
    return record


def read_records(path: str | Path, fmt: str | None = None, **options) -> Iterator[Record]:
    """Stream the records of `path`; auto-detects the format when `fmt` is None.

    Raises DataError (file:line: field) at the first bad row. `options` go to the format's reader
    (e.g. sharegpt role tags: user_tag="user").
    """
    for item in scan(path, fmt, **options):
        if isinstance(item, Problem):
            raise item.error()
        yield item


def output_container(path: str | Path, container: str | None = None) -> str:
    """'lines' (JSONL) or 'array' (one JSON array): as asked, else by the file's suffix."""
    if container is not None:
        if container not in ("lines", "array"):
            raise DataError(f"unknown container {container!r}", hint="use 'lines' (JSONL) or 'array' (JSON)")
        return container
    return "array" if Path(path).suffix.lower() == ".json" else "lines"


def write_records(records: Iterable[Record], path: str | Path, fmt: str, *, container: str | None = None, **options) -> int:
    """Write `records` to `path` in format `fmt`, atomically; returns the number of rows written.

    `.json` files get one JSON array, anything else JSON Lines (override with `container`).
    Nothing is left at `path` when a record cannot be written or the input fails mid-way.
    """
    path = Path(path)
    write_row = format_named(fmt).write_row
    as_array = output_container(path, container) == "array"
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    count = 0
    with atomic_writer(path, "w") as handle:
        write = handle.write
        if as_array:
            write("[")
        for record in records:
            try:
                row = write_row(record, **options)
            except RowProblem as exc:
                source = f"the record from line {record.line}" if record.line else f"record {count + 1}"
                raise DataError(f"cannot write {source} as {fmt}: {exc.message}", location=Location(path, None, exc.field)) from None
            if as_array:
                write(",\n  " if count else "\n  ")
                write(dumps(row))
            else:
                write(dumps(row))
                write("\n")
            count += 1
        if as_array:
            write("\n]\n" if count else "]\n")
    return count


def is_array_file(path: str | Path) -> bool:
    return container_of(path) == "array"
