"""Stream the rows of a JSONL file or a JSON array file without holding the file in memory.

JSONL is read line by line. A JSON array is parsed incrementally: a bounded text buffer and the C
decoder's `raw_decode` on one element at a time, so a multi-GB array costs one element of memory
(no `ijson` dependency needed). Every row comes with the 1-based line it starts on.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

BOM = codecs.BOM_UTF8
CHUNK_CHARS = 1 << 20
# An array element bigger than this is treated as a syntax error rather than buffered forever.
MAX_ELEMENT_CHARS = 256 << 20

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


@dataclass(slots=True)
class RawRow:
    """One row: `value` when it parsed, else `error` (and `field`) saying why not."""

    line: int
    value: Any = None
    error: str | None = None
    field: str | None = None
    fatal: bool = False  # the rest of the file cannot be read after this error


class DuplicateKey(ValueError):
    pass


class InvalidUtf8(Exception):
    def __init__(self, line: int, offset: int):
        super().__init__(line, offset)
        self.line = line
        self.offset = offset


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


_strict_decoder = json.JSONDecoder(object_pairs_hook=_reject_duplicate_keys)


def container_of(path: str | Path) -> str:
    """'array' when the file's first non-blank character is '[', else 'lines'."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        while head and not head.lstrip(BOM + b" \t\r\n"):
            more = handle.read(4096)
            if not more:
                break
            head += more
    stripped = head[len(BOM):] if head.startswith(BOM) else head
    return "array" if stripped.lstrip(b" \t\r\n")[:1] == b"[" else "lines"


def has_bom(path: str | Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(BOM)) == BOM


def iter_raw_rows(path: str | Path) -> Iterator[RawRow]:
    """Every row of `path` (JSONL or JSON array) with its line; problems come back as rows too.

    An object with a repeated key is a problem (json would silently keep the last value; the hook
    that catches it costs about a quarter of the parse time). A BOM is reported on line 1.
    """
    if has_bom(path):
        yield RawRow(1, error="file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM", field="BOM")
    if container_of(path) == "array":
        yield from _iter_array(path)
    else:
        yield from _iter_lines(path)


def _decode_error(exc: Exception) -> tuple[str, str | None]:
    if isinstance(exc, DuplicateKey):
        return f"duplicate key {exc.args[0]!r}", str(exc.args[0])
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (column {exc.colno})", None
    return f"not valid JSON: {exc}", None


def _iter_lines(path: str | Path) -> Iterator[RawRow]:
    loads = _strict_decoder.decode
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRow(number, error=f"invalid UTF-8 at byte {exc.start} of the line", field="encoding")
                continue
            if not text.strip():
                continue
            try:
                yield RawRow(number, value=loads(text))
            except (ValueError, RecursionError) as exc:
                message, field = _decode_error(exc)
                yield RawRow(number, error=message, field=field)


class _ArrayReader:
    """A sliding window of decoded text over the file, with the line number of the window start."""

    def __init__(self, handle):
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buffer = ""
        self.pos = 0
        self.line = 1
        self.counted_to = 0  # newlines in buffer[:counted_to] are already in self.line
        self.eof = False
        self.bytes_read = 0

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK_CHARS)
        if self.bytes_read == 0 and chunk.startswith(BOM):
            chunk = chunk[len(BOM):]
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            line = self.line + self.buffer.count("\n", self.counted_to) + chunk.count(b"\n", 0, exc.start)
            raise InvalidUtf8(line, self.bytes_read + exc.start) from None
        self.bytes_read += len(chunk)
        if not chunk:
            self.eof = True
        # drop what has been consumed so the window stays small
        self.line += self.buffer.count("\n", self.counted_to, self.pos)
        self.buffer = self.buffer[self.pos:] + text
        self.pos = 0
        self.counted_to = 0
        return bool(chunk)

    def line_at(self, pos: int) -> int:
        self.line += self.buffer.count("\n", self.counted_to, pos)
        self.counted_to = pos
        return self.line

    def skip_whitespace(self) -> str | None:
        """The next non-blank character (not consumed), or None at end of file."""
        while True:
            buffer, pos = self.buffer, self.pos
            while pos < len(buffer) and buffer[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(buffer):
                return buffer[pos]
            if not self.fill():
                return None


def _iter_array(path: str | Path) -> Iterator[RawRow]:
    decode = _strict_decoder.raw_decode
    with open(path, "rb") as handle:
        reader = _ArrayReader(handle)
        try:
            first = reader.skip_whitespace()
            if first != "[":
                yield RawRow(reader.line_at(reader.pos), error="expected '[' to start a JSON array", fatal=True)
                return
            reader.pos += 1
            expect_value = True
            after_comma = False
            while True:
                char = reader.skip_whitespace()
                where = reader.line_at(reader.pos)
                if char is None:
                    yield RawRow(where, error="the JSON array is not closed (missing ']')", fatal=True)
                    return
                if char == "]" and not after_comma:
                    reader.pos += 1
                    trailing = reader.skip_whitespace()
                    if trailing is not None:
                        yield RawRow(reader.line_at(reader.pos), error="text after the closing ']'", fatal=True)
                    return
                if not expect_value:
                    if char != ",":
                        yield RawRow(where, error=f"expected ',' or ']' between array elements, found {char!r}", fatal=True)
                        return
                    reader.pos += 1
                    expect_value = True
                    after_comma = True
                    continue
                row, end = _decode_element(reader, decode, where)
                yield row
                if row.fatal:
                    return
                reader.pos = end
                expect_value = False
                after_comma = False
        except InvalidUtf8 as exc:
            yield RawRow(exc.line, error=f"invalid UTF-8 at byte {exc.offset} of the file", field="encoding", fatal=True)


def _decode_element(reader: _ArrayReader, decode, where: int) -> tuple[RawRow, int]:
    """Decode the element at the reader's position, reading more of the file while it is cut off."""
    while True:
        try:
            value, end = decode(reader.buffer, reader.pos)
        except DuplicateKey as exc:
            # the element is well-formed JSON: find its end with the plain decoder and go on
            message, field = _decode_error(exc)
            try:
                return RawRow(where, error=message, field=field), _decoder.raw_decode(reader.buffer, reader.pos)[1]
            except ValueError:
                pass  # cut off by the window: the plain decode below reads on
        except (ValueError, RecursionError) as exc:
            if not _read_more(reader):
                message, field = _decode_error(exc)
                if isinstance(exc, json.JSONDecodeError):
                    where = reader.line_at(min(exc.pos, len(reader.buffer)))
                return RawRow(where, error=message, field=field, fatal=True), reader.pos
            continue
        else:
            # a bare number at the window's edge may continue in the next chunk
            if end < len(reader.buffer) or not _read_more(reader):
                return RawRow(where, value=value), end
            continue
        if not _read_more(reader):
            return RawRow(where, error="the JSON array is cut off", fatal=True), reader.pos


def _read_more(reader: _ArrayReader) -> bool:
    return not reader.eof and len(reader.buffer) - reader.pos < MAX_ELEMENT_CHARS and reader.fill()
