"""Stream the rows of a JSONL file or a JSON array file without holding the file in memory.

JSONL is read line by line, each line parsed by orjson; a line orjson cannot parse exactly like the
stdlib `json` (see `_fast_loads`) is parsed again by `json` with the duplicate-key hook, so every
value and every error message is the stdlib's. A JSON array is parsed incrementally: a bounded text
buffer and the C decoder's `raw_decode` on one element at a time, so a multi-GB array costs one
element of memory (no `ijson` dependency needed). Every row comes with the 1-based line it starts on.
"""

from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

BOM = codecs.BOM_UTF8
CHUNK_CHARS = 1 << 20
# An array element bigger than this is treated as a syntax error rather than buffered forever.
MAX_ELEMENT_CHARS = 256 << 20

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
# Rows nest a few levels; past this `json` decides (orjson and `json` stop at different depths).
MAX_FAST_DEPTH = 100


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
_stdlib_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dump_row(value: Any) -> bytes:
    """The compact UTF-8 JSON of one row: orjson's, or the stdlib's where orjson would not be exact.

    orjson writes NaN and the infinities as null (the stdlib writes NaN/Infinity, as these files
    always had) and refuses integers beyond 64 bits. So a row it refuses, or whose orjson text
    holds "null" anywhere (a None, or NaN turned into one), is encoded by the stdlib, with the
    same separators: the two encoders agree on everything else but how a few floats look
    (0.00001 vs 1e-05, the same number).
    """
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        return _stdlib_encode(value).encode("utf-8")
    if b"null" in encoded:
        return _stdlib_encode(value).encode("utf-8")
    return encoded


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

    An object with a repeated key is a problem (json and orjson would silently keep the last
    value). A BOM is reported on line 1.
    """
    if has_bom(path):
        yield RawRow(1, error="file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM", field="BOM")
    if container_of(path) == "array":
        yield from _iter_array(path)
    else:
        yield from iter_line_rows(path)


def _decode_error(exc: Exception) -> tuple[str, str | None]:
    if isinstance(exc, DuplicateKey):
        return f"duplicate key {exc.args[0]!r}", str(exc.args[0])
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (column {exc.colno})", None
    return f"not valid JSON: {exc}", None


def iter_line_rows(path: str | Path, start: int = 0, end: int | None = None, first_line: int = 1) -> Iterator[RawRow]:
    """The JSONL rows in bytes [start, end) of `path`; `first_line` is the number of the line at `start`."""
    with open(path, "rb") as handle:
        handle.seek(start)
        position = start
        for number, raw in enumerate(handle, first_line):
            if end is not None and position >= end:
                return
            position += len(raw)
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            row = line_row(number, raw)
            if row is not None:
                yield row


def line_row(number: int, raw: bytes) -> RawRow | None:
    """The row of one JSONL line (numbered `number`), or None for a blank line."""
    try:
        return RawRow(number, value=_fast_loads(raw))
    except ValueError:
        return _exact_row(number, raw)


class _Inexact(ValueError):
    """orjson parsed the line, but its value might not be the one `json` gives."""


def _fast_loads(raw: bytes) -> Any:
    """orjson's value of one JSONL line when it is provably the stdlib's (duplicate keys included).

    orjson keeps the last of repeated keys silently, so the keys it kept are counted against an
    upper bound of the keys written in the line. The bound holds because a real key is a string
    whose closing quote is followed by optional whitespace and ':', while a quote inside a string
    is always escaped: each real key owns a ':' (`line.count(b":")`) and, more tightly, an
    unescaped '"' followed by ':', ' ', tab or CR (`_key_bound`; a line holds no LF before its
    end). Kept keys <= written keys <= bound, so kept == bound proves no object repeats a key.
    Anything else (a repeated key, a ':' inside a string the bounds cannot rule out, a float,
    deep nesting, or a parse error) raises, and the caller parses the line with `json`.
    """
    value = orjson.loads(raw)
    kept = _keys_kept((value,), 0)
    if kept != raw.count(b":") and kept != _key_bound(raw):
        raise _Inexact
    return value


def _keys_kept(value: dict | list | tuple, depth: int) -> int:
    """The keys of every object in `value`; raises _Inexact at a float or past MAX_FAST_DEPTH.

    orjson reads an integer beyond 64 bits as a float, and may round a float literal differently
    from `json`, so any float sends the line to `json`. The objects directly inside a container
    (a row, a row's turns) are counted in place: a call per object costs more than its keys.
    """
    if depth > MAX_FAST_DEPTH:
        raise _Inexact
    count = 0
    if type(value) is dict:
        count = len(value)
        value = value.values()
    for item in value:
        kind = type(item)
        if kind is list:
            count += _keys_kept(item, depth + 1)
        elif kind is dict:
            count += len(item)
            for inner in item.values():
                inner_kind = type(inner)
                if inner_kind is dict or inner_kind is list:
                    count += _keys_kept(inner, depth + 2)
                elif inner_kind is float:
                    raise _Inexact
        elif kind is float:
            raise _Inexact
    return count


def _key_bound(raw: bytes) -> int:
    """At least the number of keys written in `raw` (see `_fast_loads`).

    A '"' before ':' is a key's closing quote unless a backslash escapes it; it is escaped when an
    odd run of backslashes precedes it, so subtracting every \\": and adding back every \\\\": counts
    each real key once and each escaped quote at most once.
    """
    count = raw.count
    return (
        count(b'":') - count(b'\\":') + count(b'\\\\":')
        + count(b'" ') + count(b'"\t') + count(b'"\r')
    )


def _exact_row(number: int, raw: bytes) -> RawRow | None:
    """The row of one line as the stdlib `json` reads it, or None for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawRow(number, error=f"invalid UTF-8 at byte {exc.start} of the line", field="encoding")
    if text.isspace() or not text:
        return None
    try:
        return _portable_row(number, _strict_decoder.decode(text))
    except (ValueError, RecursionError) as exc:
        message, field = _decode_error(exc)
        return RawRow(number, error=message, field=field)


def _portable_row(number: int, value: Any) -> RawRow:
    """The row, or its problem when it holds what the stdlib reads but no backend can: a NaN or
    infinity (not JSON; written out it breaks the next reader) or a lone surrogate (no UTF-8 for it).
    orjson refuses both, so only rows parsed by `json` need this walk."""
    problem = _unportable(value, "")
    if problem is None:
        return RawRow(number, value=value)
    message, field = problem
    return RawRow(number, error=message, field=field or None)


def _unportable(value: Any, where: str) -> tuple[str, str] | None:
    kind = type(value)
    if kind is float:
        if value != value or value in (math.inf, -math.inf):
            return f"{json.dumps(value)} is not a JSON number (NaN and Infinity are not JSON)", where
    elif kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"lone surrogate {value[exc.start]!r} at character {exc.start}: not encodable as UTF-8", where
    elif kind is dict:
        for key, item in value.items():
            found = _unportable(key, where) or _unportable(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif kind is list:
        for index, item in enumerate(value):
            found = _unportable(item, f"{where}[{index}]")
            if found:
                return found
    return None


def byte_ranges(path: str | Path, parts: int) -> list[tuple[int, int]]:
    """`path` cut into about `parts` byte ranges [start, end) on line boundaries."""
    size = Path(path).stat().st_size
    bounds = [0]
    with open(path, "rb") as handle:
        for index in range(1, parts):
            handle.seek(size * index // parts)
            handle.readline()
            if bounds[-1] < handle.tell() < size:
                bounds.append(handle.tell())
    bounds.append(size)
    return list(zip(bounds, bounds[1:]))


def lines_before(path: str | Path, offsets: list[int]) -> list[int]:
    """How many lines of `path` end before each of the ascending byte `offsets` (one read up to the last)."""
    counts = []
    lines = position = 0
    with open(path, "rb") as handle:
        for offset in offsets:
            while position < offset:
                block = handle.read(min(offset - position, 1 << 24))
                lines += block.count(b"\n")
                position += len(block)
            counts.append(lines)
    return counts


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
                return _portable_row(where, value), end
            continue
        if not _read_more(reader):
            return RawRow(where, error="the JSON array is cut off", fatal=True), reader.pos


def _read_more(reader: _ArrayReader) -> bool:
    return not reader.eof and len(reader.buffer) - reader.pos < MAX_ELEMENT_CHARS and reader.fill()
