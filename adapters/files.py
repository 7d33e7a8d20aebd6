"""Read and write dataset files in any registered format, streaming, with file:line:field errors."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from stylewrap.adapters.formats import FORMATS, Format
from stylewrap.adapters.jsonstream import BOM, RawRow, container_of, dump_row, iter_line_rows, iter_raw_rows, line_row
from stylewrap.adapters.records import Record, RowProblem
from stylewrap.adapters.typedblocks import block_prover_for
from stylewrap.adapters.typedrows import prover_for
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
        # a FIFO or a device would be read for ever (or block): only regular files are datasets
        raise DataError("not a regular file" if path.exists() else "no such file", location=Location(path))


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


def scan_rows(
    path: str | Path, fmt: str | None = None, *, line_range: tuple[int, int, int] | None = None, **options
) -> Iterator[tuple[RawRow, Record | Problem]]:
    """Like `scan`, with the parsed row each Record or Problem came from.

    `line_range` (start byte, end byte, first line) limits a JSONL file to one slice of it.
    """
    path = Path(path)
    fmt_name = fmt or detect_format(path)
    read_row = format_named(fmt_name).read_row
    name = str(path)
    for raw in iter_line_rows(path, *line_range) if line_range else iter_raw_rows(path):
        if raw.error is not None:
            yield raw, Problem(name, raw.line, raw.field, raw.error, raw.fatal)
            continue
        yield raw, _to_record(raw, read_row, name, options)


def scan_lines(path: str | Path, fmt: str, byte_range: tuple[int, int], **options) -> Iterator[Any]:
    """The JSONL lines in `byte_range` of `path` (numbered from 1), for whole-file passes.

    Lines `typedblocks`/`typedrows` prove valid come as lists of typed rows, in file order
    (`TYPED_FORMATS[fmt].record` turns one into the Record the reader would build); every other
    line as `scan_rows` gives it, (RawRow, Record | Problem), so a problem keeps its exact
    file:line:field. A block of lines is first proved in one piece; a block that is not is proved
    line by line, each line read exactly as a file iteration gives it.
    """
    prove = prover_for(fmt, options)
    if prove is None:
        yield from scan_rows(path, fmt, line_range=(*byte_range, 1), **options)
        return
    prove_block = block_prover_for(fmt, options)
    read_row = format_named(fmt).read_row
    name = str(path)
    start, end = byte_range
    number = 0
    with open(path, "rb") as handle:
        handle.seek(start)
        for lines in whole_lines(handle, end - start):
            rows = prove_block(lines)
            if rows is not None:
                number += len(rows)
                yield rows
                continue
            for raw in io.BytesIO(lines):
                number += 1
                typed = prove(raw)
                if typed is not None:
                    yield [typed]
                    continue
                if number == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM):]
                row = line_row(number, raw)
                if row is None:
                    continue
                if row.error is not None:
                    yield row, Problem(name, row.line, row.field, row.error, row.fatal)
                else:
                    yield row, _to_record(row, read_row, name, options)


# Lines are proved this many bytes at a time: the block and its rows stay in the CPU caches (1 MiB
# blocks took 1.5x as long to make and decode as 64 KiB ones; 32-128 KiB measured alike)
BLOCK_BYTES = 64 << 10


def whole_lines(handle, size: int, block: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The next `size` bytes of binary `handle` in pieces of whole lines, about `block` bytes each."""
    pending: list[bytes] = []  # the start of a line that has not ended yet (a list: a long line is joined once)
    while size > 0:
        data = handle.read(min(block, size))
        if not data:
            break
        size -= len(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line ends in this read: read on
            pending.append(data)
            continue
        # one copy: the pending start of a line, then this read up to its last newline
        yield b"".join((*pending, memoryview(data)[:cut])) if pending or cut < len(data) else data
        pending = [data[cut:]] if cut < len(data) else []
    if pending:
        yield b"".join(pending)


def row_line(path: str | Path, byte_range: tuple[int, int], index: int) -> int:
    """The line (numbered from 1 at the range's start) of the `index`-th row in `byte_range` (blank lines hold no row)."""
    rows = -1
    for raw in iter_line_rows(path, *byte_range):
        rows += 1
        if rows == index:
            return raw.line
    raise IndexError(index)


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


class RowSink:
    """Writes encoded rows (bytes) to a binary handle as JSON Lines or as the elements of one JSON array.

    Every array element is written after ",\n  "; the first element's comma is dropped, here or,
    for `fragment` sinks (part files written by parallel workers), by `join_fragments`. Rows are
    gathered and written in batches: one write call per 1024 rows instead of two per row.
    """

    def __init__(self, handle, as_array: bool, *, fragment: bool = False):
        self.handle = handle
        self.as_array = as_array
        self.fragment = fragment
        self.count = 0
        self.pending: list[bytes] = []
        if as_array and not fragment:
            self.pending.append(b"[")

    def add(self, encoded: bytes) -> None:
        pending = self.pending
        if self.as_array:
            pending.append(ELEMENT_PREFIX[1:] if self.count == 0 and not self.fragment else ELEMENT_PREFIX)
            pending.append(encoded)
        else:
            pending.append(encoded)
            pending.append(b"\n")
        self.count += 1
        if len(pending) >= BATCH_PIECES:
            self.flush()

    def add_many(self, encoded: list[bytes]) -> None:
        """`add` each of `encoded` (a block of rows), written at once."""
        if not encoded:
            return
        pending = self.pending
        if self.as_array:
            pending.append(ELEMENT_PREFIX[1:] if self.count == 0 and not self.fragment else ELEMENT_PREFIX)
            pending.append(ELEMENT_PREFIX.join(encoded))
        else:
            pending.append(b"\n".join(encoded))
            pending.append(b"\n")
        self.count += len(encoded)
        self.flush()  # a block is a batch already; held back, blocks would pile up (memory)

    def flush(self) -> None:
        self.handle.write(b"".join(self.pending))
        self.pending.clear()

    def close(self, total: int | None = None) -> None:
        if self.as_array and not self.fragment:
            self.pending.append(b"\n]\n" if (self.count if total is None else total) else b"]\n")
        self.flush()


ELEMENT_PREFIX = b",\n  "
BATCH_PIECES = 2048


def join_fragments(handle, parts: list[tuple[Path, int]], as_array: bool) -> int:
    """Concatenate fragment files (path, rows) into `handle` (binary) as one document; returns rows."""
    total = 0
    if as_array:
        handle.write(b"[")
    for part, rows in parts:
        if not rows:
            continue
        with open(part, "rb") as source:
            if as_array and total == 0:
                source.read(1)  # the document's first element has no comma before it
            append_file(source, handle)
        total += rows
    if as_array:
        handle.write(b"\n]\n" if total else b"]\n")
    return total


def append_file(source, handle) -> None:
    """Copy the rest of binary file `source` to the end of binary file `handle`.

    The kernel copies it (`os.copy_file_range`: about 9x faster than through Python's buffers for the
    600 MB a big convert joins); where it cannot (another file system on an old kernel, a pipe),
    shutil copies it.
    """
    offset = source.tell()
    remaining = os.fstat(source.fileno()).st_size - offset
    handle.flush()
    try:
        while remaining > 0:
            copied = os.copy_file_range(source.fileno(), handle.fileno(), remaining, offset)
            if copied == 0:
                break
            offset += copied
            remaining -= copied
    except (OSError, AttributeError):
        pass
    handle.seek(0, os.SEEK_END)
    if remaining > 0:
        source.seek(offset)
        shutil.copyfileobj(source, handle, 1 << 20)


def record_encoder(fmt: str, output: Path, **options) -> Callable[[Record], bytes]:
    """Record -> the JSON of its row in `fmt`; a record the format cannot hold raises DataError."""
    write_row = format_named(fmt).write_row

    def encode(record: Record) -> bytes:
        try:
            return dump_row(write_row(record, **options))
        except RowProblem as exc:
            raise unwritable(fmt, output, record.line, exc) from None

    return encode


def unwritable(fmt: str, output: Path, line: int | None, problem: RowProblem) -> DataError:
    """The error for a record from input line `line` that format `fmt` cannot hold."""
    source = f"the record from line {line}" if line else "a record"
    return DataError(f"cannot write {source} as {fmt}: {problem.message}", location=Location(output, None, problem.field))


def write_records(records: Iterable[Record], path: str | Path, fmt: str, *, container: str | None = None, **options) -> int:
    """Write `records` to `path` in format `fmt`, atomically; returns the number of rows written.

    `.json` files get one JSON array, anything else JSON Lines (override with `container`).
    Nothing is left at `path` when a record cannot be written or the input fails mid-way.
    """
    path = Path(path)
    encode = record_encoder(fmt, path, **options)
    with atomic_writer(path, "wb") as handle:
        sink = RowSink(handle, output_container(path, container) == "array")
        for record in records:
            sink.add(encode(record))
        sink.close()
    return sink.count


def is_array_file(path: str | Path) -> bool:
    """True when `path` holds one JSON array (else it is read as JSON Lines)."""
    return container_of(path) == "array"
