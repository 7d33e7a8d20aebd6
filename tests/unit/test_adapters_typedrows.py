"""A line the typed fast path (msgspec Structs) proves valid is exactly the row the precise path reads.

`typedrows` may only say "valid, and here is the row"; every problem's wording and file:line:field
comes from the precise path. So: whatever it proves must be a Record the precise path builds too
(same messages, tools, nothing in meta), every line the precise path rejects (a duplicate key above
all) must not be proved, and a whole-file validate/convert through the installed command still
names the real line of a problem deep inside a file big enough to be cut into slices.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from stylewrap.adapters import parallel
from stylewrap.adapters.files import Problem, _to_record
from stylewrap.adapters.formats import read_sharegpt
from stylewrap.adapters.jsonstream import line_row
from stylewrap.adapters.records import Record
from stylewrap.adapters.typedrows import sharegpt_prover, sharegpt_record

STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")


def precise(line: bytes) -> Record | Problem | None:
    row = line_row(7, line)
    if row is None:
        return None
    if row.error is not None:
        return Problem("f", row.line, row.field, row.error)
    return _to_record(row, read_sharegpt, "f", {})


def real_lines(shared_data: Path) -> list[bytes]:
    """sharegpt lines from the real TslDial and glaive rows: single and multi turn, system, tools."""
    tsl = json.loads((shared_data / "tsldial/TslDial.json").read_text(encoding="utf-8"))[:300]
    glaive = json.loads((shared_data / "llamafactory/glaive_toolcall_zh_demo.json").read_text(encoding="utf-8"))
    lines = []
    for index, row in enumerate(tsl):
        turns = [{"from": "human", "value": row["input"]}, {"from": "gpt", "value": row["output"]}]
        shaped = {"conversations": turns, "system": "你是一个说话带西式翻译腔的朋友。"} if index % 3 == 0 else {"conversations": turns}
        lines.append(json.dumps(shaped, ensure_ascii=False).encode())
    lines += [json.dumps(row, ensure_ascii=index % 2 == 0).encode() for index, row in enumerate(glaive)]
    return lines


DUPLICATES = [
    b'{"conversations":[{"from":"human","value":"a","value":"b"},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[],"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":"s","system":"t"}',
    b'{"tools":"[]","conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"tools":"[]"}',
    b'{"conversations":[{"from":"human","from":"human","value":"a"},{"from":"gpt","value":"c"}]}',
    # the key written with an escape
    b'{"conversations":[{"from":"human","v\\u0061lue":"a","value":"b"},{"from":"gpt","value":"c"}]}',
    # the dropped value held the colon that would balance the count
    b'{"conversations":[{"from":"human","value":"x:y","value":"b"},{"from":"gpt","value":"c"}]}',
    # a colon written as an escape in a kept string balances the repeated key's colon
    b'{"conversations":[{"from":"human","value":"a\\u003ab","value":"b\\u003ab"},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":"12:30 \\u003A","system":"b"}',
]


@pytest.mark.parametrize("line", DUPLICATES, ids=range(len(DUPLICATES)))
def test_a_repeated_key_is_never_proved_and_the_precise_path_names_it(line):
    assert sharegpt_prover()(line) is None
    problem = precise(line)
    assert isinstance(problem, Problem) and problem.message.startswith("duplicate key"), problem


NOT_VALID = [
    b'{"conversations":[{"from":"human","value":" \\n"},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[{"from":"human","value":"\xe3\x80\x80"},{"from":"gpt","value":"c"}]}',  # U+3000 only
    b'{"conversations":[{"from":"human","value":""},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[{"from":"gpt","value":"a"},{"from":"human","value":"c"}]}',
    b'{"conversations":[{"from":"human","value":"a"}]}',
    b'{"conversations":[]}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":"  "}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"tools":"not json"}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"tools":"\\"a string\\""}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":2}]}',
    b'{"conversations":[{"from":"user","value":"a"},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"},{"from":"system","value":"s"}]}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":"\\ud800"}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}]',
    b'{"conversations":[{"from":"human","value":"a\tb"},{"from":"gpt","value":"c"}]}',
]


@pytest.mark.parametrize("line", NOT_VALID, ids=range(len(NOT_VALID)))
def test_a_row_the_precise_path_rejects_is_never_proved(line):
    assert sharegpt_prover()(line) is None
    assert isinstance(precise(line), Problem)


# what a random edit inserts: JSON structure, escapes, keys the Structs know or refuse, odd bytes
LINE_PIECES = [b'"', b":", b",", b"\\", b"\\u003a", b" ", b'"value":"x",', b'"from":"gpt",', b'"system":"s",', b"}", b"{",
               b"]", b'\\"', b"\\\\", b"null", b'"loss_weight":1,', b"\xe3\x80\x80", b"\xff"]


def edited(rng: random.Random, line: bytes, pieces: list[bytes]) -> bytes:
    """`line` with one to three random cuts or insertions of `pieces`."""
    line = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(line))
        if rng.random() < 0.3:
            del line[at:at + rng.randint(1, 4)]
        else:
            line[at:at] = rng.choice(pieces)
    return bytes(line)


def test_proved_rows_are_the_records_the_reader_builds(shared_data):
    """Real rows and random edits of them: what is proved is the precise path's Record, and most real rows are proved."""
    prove = sharegpt_prover()
    lines = real_lines(shared_data)
    proved = sum(prove(line) is not None for line in lines)
    assert proved >= 0.95 * len(lines)
    rng = random.Random(22)
    cases = list(lines) + [edited(rng, rng.choice(lines), LINE_PIECES) for _ in range(4000)]
    checked = 0
    for line in cases:
        row = prove(line)
        expected = precise(line)
        if row is None:
            continue
        checked += 1
        assert isinstance(expected, Record), (line, expected)
        record = sharegpt_record(row)
        assert (record.messages, record.tools, record.meta) == (expected.messages, expected.tools, expected.meta), line
    assert checked > len(lines)  # some edited lines stay valid and are proved too


UNUSUAL_BUT_VALID = [
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"id":3}',
    b'{"conversations":[{"from":"human","value":"a","loss_weight":0.5},{"from":"gpt","value":"c"}]}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":null}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"tools":"[NaN]"}',
    b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"tools":[{"name":"f"}]}',
]


@pytest.mark.parametrize("line", UNUSUAL_BUT_VALID, ids=range(len(UNUSUAL_BUT_VALID)))
def test_unusual_rows_take_the_precise_path(line):
    assert sharegpt_prover()(line) is None
    assert isinstance(precise(line), Record)


def big_sharegpt_file(shared_data: Path, path: Path, planted: dict[int, bytes]) -> int:
    """A sliced-size sharegpt JSONL file of real rows with `planted` lines (1-based) replaced."""
    lines = real_lines(shared_data)
    count = parallel.MIN_PARALLEL_BYTES // 400 + 1000
    with open(path, "wb") as handle:
        for number in range(1, count + 1):
            handle.write(planted.get(number, lines[number % len(lines)]) + b"\n")
    assert path.stat().st_size > parallel.MIN_PARALLEL_BYTES
    return count


def test_validate_command_names_the_real_line_of_problems_deep_in_a_sliced_file(shared_data, tmp_path):
    dup = b'{"conversations":[{"from":"human","value":"a","value":"b"},{"from":"gpt","value":"c"}]}'
    blank = b'{"conversations":[{"from":"human","value":"   "},{"from":"gpt","value":"c"}]}'
    source = tmp_path / "big.jsonl"
    rows = big_sharegpt_file(shared_data, source, {31_000: dup, 40_404: blank})
    done = subprocess.run([STYLEWRAP, "data", "validate", str(source), "--format", "sharegpt"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    output = done.stdout + done.stderr
    assert f"{source}:31000: value: duplicate key 'value'" in output
    assert f"{source}:40404: conversations[0].value: empty user content" in output
    assert f"{rows} rows" in output and "2 problems" in output


def test_convert_command_writes_what_the_precise_path_writes(shared_data, tmp_path, monkeypatch):
    source = tmp_path / "big.jsonl"
    big_sharegpt_file(shared_data, source, {})
    fast = tmp_path / "fast.jsonl"
    done = subprocess.run([STYLEWRAP, "data", "convert", str(source), "--output", str(fast), "--to", "messages"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    from stylewrap.adapters.files import read_records, write_records

    slow = tmp_path / "slow.jsonl"
    write_records(read_records(source, "sharegpt"), slow, "messages")  # one process, precise path only
    assert fast.read_bytes() == slow.read_bytes()


def test_a_proved_row_converts_to_the_bytes_the_precise_path_writes(shared_data):
    """convert sharegpt -> messages skips the Record for proved rows: same bytes, awkward strings included."""
    from stylewrap.adapters.formats import write_messages
    from stylewrap.adapters.jsonstream import dump_row
    from stylewrap.adapters.typedrows import sharegpt_to_messages

    awkward = json.dumps({"conversations": [{"from": "human", "value": 'null "q" \\ \u2028 \x01 \n 😀 </script>'},
                                            {"from": "gpt", "value": "NaN Infinity 1e400 null"}],
                          "system": "系统：null", "tools": "[{\"name\": \"f\", \"x\": null, \"y\": 1.5e-05}]"},
                         ensure_ascii=False).encode()
    prove = sharegpt_prover()
    lines = [awkward, *real_lines(shared_data)]
    for line in lines:
        row = prove(line)
        assert row is not None, line
        assert sharegpt_to_messages(row) == dump_row(write_messages(precise(line))), line
