"""JSONL rows parsed by orjson are exactly the rows the stdlib `json` (with its duplicate-key hook) reads.

orjson keeps the last of repeated keys silently; `_fast_loads` only accepts its value when a count of
the keys written in the line proves no object repeats one. These tests attack that proof with keys
and strings built to fool a byte count, and compare every line with the stdlib reading of it.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest

from stylewrap.adapters import jsonstream
from stylewrap.adapters.jsonstream import _exact_row, _fast_loads, dump_row, iter_line_rows
from stylewrap.adapters.ops import convert
from stylewrap.adapters import parallel
from stylewrap.errors import DataError

DUPLICATES = {
    "plain": (b'{"a": 1, "a": 2}', "a"),
    "unicode-escaped key": (b'{"from": "human", "fr\\u006fm": "gpt", "value": "x"}', "from"),
    # a naive count of '":' equals the kept keys here: the spaced keys are missed and the
    # escaped quote inside the string is counted instead
    "space before colon, quote-colon in a string": (b'{"a" :1, "a" :2, "b":"\\":"}', "a"),
    "tab and CR before colons": (b'{"a"\t:1,"a"\r:2}', "a"),
    "key ending in a backslash": (b'{"a\\\\": 1, "a\\\\": 2}', "a\\"),
    "escaped backslash then escaped quote in a string": (b'{"k": "\\\\\\":", "k": 1}', "k"),
    "nested in a turn": (b'{"conversations": [{"from": "human", "from": "gpt", "value": "x"}]}', "from"),
    "quote-colons in strings outnumber the duplicate": (b'{"x": "\\": \\": \\":", "a": 1, "a": 2}', "a"),
}


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_every_duplicate_key_is_reported_like_the_stdlib(tmp_path, name):
    line, key = DUPLICATES[name]
    with pytest.raises(ValueError):
        _fast_loads(line)
    path = tmp_path / "dup.jsonl"
    path.write_bytes(b'{"ok": true}\n' + line + b"\n")
    rows = list(iter_line_rows(path))
    assert [(row.line, row.field, row.error) for row in rows] == [(1, None, None), (2, key, f"duplicate key {key!r}")]


def test_colons_inside_strings_keep_a_row_on_the_fast_path():
    line = b'{"tools": "[{\\"name\\": \\"f\\", \\"a\\": {\\"b\\": 1}}]", "at": "12:30"}'
    assert _fast_loads(line) == json.loads(line)


VALUES_ORJSON_WOULD_CHANGE = [
    b'{"n": 18446744073709551616}',  # past 64 bits orjson gives a float
    b'{"n": -9223372036854775809}',
    b'{"w": 0.1, "big": 1e400}',  # 1e400: orjson refuses, json gives inf
    b'{"w": NaN}',
    b'{"s": "\\ud800"}',  # a lone surrogate: json keeps it
    b"[" * 500 + b"]" * 500,  # deeper than `_fast_loads` checks: json parses it
    b"[" * 1000 + b"]" * 1000,  # orjson parses it, json runs out of recursion
]


@pytest.mark.parametrize("line", VALUES_ORJSON_WOULD_CHANGE, ids=range(len(VALUES_ORJSON_WOULD_CHANGE)))
def test_values_orjson_cannot_read_exactly_come_from_the_stdlib(tmp_path, line):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(line + b"\n")
    [row] = list(iter_line_rows(path))
    expected = _exact_row(1, line + b"\n")
    assert (row.error, row.field) == (expected.error, expected.field)
    assert repr(row.value) == repr(expected.value)


def _random_string(rng: random.Random) -> str:
    pieces = ['"', ":", '":', "\\", " ", "\t", "a", "from", "é", "你", "\u2028", "\n", '\\":']
    return "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 6)))


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return _random_string(rng)
    if kind == 1:
        return rng.choice([0, -1, 2**40, 2**64, True, None, 1.5])
    if kind in (2, 3):
        return rng.choice(["human", "gpt", ""])
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {_random_string(rng) if rng.random() < 0.3 else rng.choice(["from", "value", "a"]): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _random_line(rng: random.Random) -> bytes:
    """A JSON object line, sometimes with whitespace before colons, escaped keys or a repeated key."""
    row = {f"k{index}": _random_value(rng) for index in range(rng.randrange(1, 4))}
    text = json.dumps(row, ensure_ascii=rng.random() < 0.3, separators=rng.choice([(",", ":"), (", ", ": "), (",", " : "), (",", "\t:")]))
    if rng.random() < 0.4:
        # repeat a key, possibly spelled with a unicode escape
        spelled = rng.choice(['"k0"', '"k\\u0030"', '"\\u006b0"'])
        text = text[:-1] + f",{spelled}{rng.choice([':', ' :', ': '])}{json.dumps(_random_value(rng))}" + "}"
    return text.encode("utf-8")


def test_random_lines_read_exactly_as_the_stdlib_reads_them(tmp_path):
    rng = random.Random(20261130)
    lines = [_random_line(rng) for _ in range(3000)]
    path = tmp_path / "random.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    rows = list(iter_line_rows(path))
    expected = [_exact_row(number, line + b"\n") for number, line in enumerate(lines, 1)]
    assert [(r.line, r.error, r.field, repr(r.value)) for r in rows] == [(e.line, e.error, e.field, repr(e.value)) for e in expected]
    assert sum(1 for e in expected if e.error and "duplicate key" in e.error) > 500


def test_rows_are_written_compact_and_as_the_stdlib_where_orjson_would_differ():
    assert dump_row({"role": "user", "content": "你好\n\u2028"}) == '{"role":"user","content":"你好\\n\u2028"}'.encode()
    assert dump_row({"w": math.nan, "x": math.inf}) == b'{"w":NaN,"x":Infinity}'
    assert dump_row({"n": 2**64}) == b'{"n":18446744073709551616}'
    assert json.loads(dump_row({"w": 1e-05, "none": None})) == {"w": 1e-05, "none": None}


def test_a_sliced_convert_names_the_real_line_of_a_record_the_target_cannot_hold(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 3)
    rows = [json.loads(line) for line in (shared_data / "tsldial/2_Dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    share = [{"conversations": [{"from": "human", "value": r["问"]}, {"from": "gpt", "value": r["答"]}]} for r in rows]
    share[10499]["system"] = "你是一个助手"  # qa rows cannot hold a system prompt
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in share), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        convert(source, tmp_path / "out.jsonl", "qa")
    assert "cannot write the record from line 10500 as qa" in caught.value.message


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", "from stylewrap.adapters.validate import validate; import sys; assert validate(sys.argv[1]).ok", sys.argv[1]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss_kib(path) -> int:
    """Peak RSS of a fresh process (and its workers) validating `path`."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1])


def test_validate_memory_stays_flat_for_ten_times_the_rows(shared_data, tmp_path):
    rows = (shared_data / "tsldial/2_Dialogues.jsonl").read_bytes()
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_bytes(rows)
    big.write_bytes(rows * 10)  # 120,000 rows, 28 MiB: validated in slices by worker processes
    assert jsonstream.container_of(big) == "lines" and parallel.workers_for(small) == 1
    small_peak, big_peak = _peak_rss_kib(small), _peak_rss_kib(big)
    assert big_peak / small_peak < 1.25, (small_peak, big_peak)
