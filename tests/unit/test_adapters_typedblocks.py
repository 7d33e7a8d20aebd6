"""A block of lines proved in one msgspec call is exactly the lines the one-line path proves, one row per line.

`typedblocks` rewrites a block of JSONL lines into one JSON document. The danger is a set of lines
that are each wrong but decode together as the right number of rows (a line with two rows next to
a line with half of one), or a repeated key on one line balanced by another line. So: such blocks
are never proved, every block proved is the rows the precise path reads line by line, and a bad
line in the middle of a block still gets its exact file:line:field from the installed command.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from stylewrap.adapters.files import whole_lines
from stylewrap.adapters.records import Record
from stylewrap.adapters.typedblocks import sharegpt_block_prover
from stylewrap.adapters.typedrows import sharegpt_record
from tests.unit.test_adapters_typedrows import LINE_PIECES, STYLEWRAP, big_sharegpt_file, edited, precise, real_lines

PAIR = b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"b"}]}'
FIRST_HALF = b'{"conversations":[{"from":"human","value":"a"}'
SECOND_HALF = b'{"from":"gpt","value":"b"}]}'

# each list is one block: every line but the good PAIRs is wrong, and the whole would decode as
# a list of as many rows as lines if the lines were simply joined with commas
FOOLING_BLOCKS = {
    "two rows on one line, half a row on each of two": [PAIR + b"," + PAIR, FIRST_HALF, SECOND_HALF],
    "two rows on one line, a blank line": [PAIR, PAIR + b"," + PAIR, b""],
    "two rows on one line, whitespace line": [PAIR + b"," + PAIR, b"   ", PAIR],
    "a lone comma": [PAIR, b",", PAIR],
    "a lone bracket": [PAIR, b"]", PAIR],
    "the separator itself": [PAIR + b"],[" + PAIR, PAIR],
    "rows split between one-element arrays": [PAIR + b"],[" + FIRST_HALF, SECOND_HALF],
    "an array of rows on one line": [b"[" + PAIR + b"," + PAIR + b"]", PAIR],
    "a row split at a string": [b'{"conversations":[{"from":"human","value":"a', b'b"},{"from":"gpt","value":"c"}]}'],
    "a row and a stray value": [PAIR + b" 1", PAIR],
    # line 1 repeats a key (one colon too many), line 2 holds a colon written as an escape that
    # decodes to one colon too many: summed over the block they balance
    "a repeated key balanced by an escaped colon on another line": [
        b'{"conversations":[{"from":"human","value":"a","value":"b"},{"from":"gpt","value":"c"}]}',
        b'{"conversations":[{"from":"human","value":"x\\u003ay"},{"from":"gpt","value":"c"}]}',
    ],
    "a repeated key balanced by a colon in a string of another line": [
        b'{"conversations":[{"from":"human","value":"a","value":"b"},{"from":"gpt","value":"c"}]}',
        b'{"conversations":[{"from":"human","value":"x"},{"from":"gpt","value":"c"}],"tools":"[]","tools":"[]"}',
        b'{"conversations":[{"from":"human","value":"12:30"},{"from":"gpt","value":"c"}]}',
    ],
    "a blank content in the middle": [PAIR, b'{"conversations":[{"from":"human","value":" \\n"},{"from":"gpt","value":"c"}]}', PAIR],
    "the turns of a block alternate but a row's do not": [
        b'{"conversations":[{"from":"human","value":"a"}]}',
        b'{"conversations":[{"from":"gpt","value":"a"},{"from":"human","value":"b"},{"from":"gpt","value":"c"}]}',
    ],
    "a row ending with a function call": [PAIR, b'{"conversations":[{"from":"human","value":"a"},{"from":"function_call","value":"{}"}]}'],
    "a system turn after the system column": [
        b'{"conversations":[{"from":"system","value":"s"},{"from":"human","value":"a"},{"from":"gpt","value":"b"}],"system":"t"}'],
    "a whitespace system prompt": [PAIR, b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":"\\t"}'],
    "tools that are not JSON": [PAIR, b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"tools":"[1,"}'],
    "a byte order mark": [b"\xef\xbb\xbf" + PAIR, PAIR],
}


@pytest.mark.parametrize("lines", FOOLING_BLOCKS.values(), ids=FOOLING_BLOCKS.keys())
def test_a_block_with_a_wrong_line_is_never_proved(lines):
    assert any(not isinstance(precise(line), Record) for line in lines)
    assert sharegpt_block_prover()(b"\n".join(lines)) is None
    assert sharegpt_block_prover()(b"\n".join(lines) + b"\n") is None


def test_rows_needing_the_verdict_per_role_sequence_are_proved():
    """Odd-length rows (a system turn first) leave the pairs shortcut; the per-sequence verdict still proves them."""
    lines = [b'{"conversations":[{"from":"system","value":"s"},{"from":"human","value":"a"},{"from":"gpt","value":"b"}]}',
             PAIR,
             b'{"conversations":[{"from":"human","value":"a"},{"from":"function_call","value":"{}"},'
             b'{"from":"observation","value":"{}"},{"from":"gpt","value":"b"}],"tools":"[]","system":""}']
    rows = sharegpt_block_prover()(b"\n".join(lines))
    assert rows is not None and len(rows) == 3
    assert [sharegpt_record(row).messages for row in rows] == [precise(line).messages for line in lines]


# the line edits plus the block separators and newlines
BLOCK_PIECES = [piece for piece in LINE_PIECES if piece not in (b"\\\\", b'"loss_weight":1,')] + [b"],[", b"[", b"\n"]


def test_a_proved_block_is_the_rows_the_precise_path_reads_line_by_line(shared_data):
    """Random blocks of real rows with random edits (a raw newline among them): a block is proved only
    when every line is one valid row, and then each row is that line's Record."""
    rng = random.Random(9)
    lines = real_lines(shared_data)
    prove = sharegpt_block_prover()
    proved = wrong = 0
    for _ in range(1500):
        block = [rng.choice(lines) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.6:
            at = rng.randrange(len(block))
            block[at] = edited(rng, block[at], BLOCK_PIECES)
        text = b"\n".join(block)
        rows = prove(text)
        if rows is None:
            continue
        expected = [precise(line) for line in text.split(b"\n")]
        assert len(rows) == len(expected), text
        for row, record in zip(rows, expected):
            assert isinstance(record, Record), (text, record)
            got = sharegpt_record(row)
            assert (got.messages, got.tools, got.meta) == (record.messages, record.tools, record.meta), text
        proved += 1
        wrong += any(line not in lines for line in block)
    assert proved > 500 and wrong > 20, (proved, wrong)  # most unedited blocks are proved, and some edits stay valid


def test_whole_lines_cuts_only_between_lines():
    text = b"a\n" + b"b" * 300 + b"\n\nccc\nlast-without-newline"
    pieces = list(whole_lines(io.BytesIO(text), len(text), block=64))
    assert b"".join(pieces) == text
    assert all(piece.endswith(b"\n") for piece in pieces[:-1])
    assert list(whole_lines(io.BytesIO(text), 2, block=64)) == [b"a\n"]  # a slice ends where it is told


def test_validate_command_names_bad_lines_in_the_middle_of_blocks(shared_data, tmp_path):
    """Lines that could fool a joined block, each in the middle of a block of good rows deep in a
    sliced file: the installed command names each one's real line and field, exit code 2."""
    planted = {25_001: PAIR + b"," + PAIR, 25_002: FIRST_HALF, 25_003: SECOND_HALF, 38_000: b"]",
               39_999: b'{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"c"}],"system":"x","system":"y"}'}
    source = tmp_path / "big.jsonl"
    rows = big_sharegpt_file(shared_data, source, planted)
    done = subprocess.run([STYLEWRAP, "data", "validate", str(source), "--format", "sharegpt"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    output = done.stdout + done.stderr
    for number, line in planted.items():
        problem = precise(line + b"\n")  # as the file holds it: a JSON error names its column
        assert not isinstance(problem, Record)
        field = f" {problem.field}:" if problem.field else ""
        assert f"{source}:{number}:{field} {problem.message}" in output, (number, problem, output[-3000:])
    assert f"{rows} rows" in output and f"{len(planted)} problems" in output


def test_whole_lines_of_a_file_slice(tmp_path: Path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"one\ntwo\nthree\n")
    with open(path, "rb") as handle:
        handle.seek(4)
        assert b"".join(whole_lines(handle, 10, block=3)) == b"two\nthree\n"


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_convert_memory_stays_flat_for_three_times_the_rows(shared_data, tmp_path):
    """Blocks of converted rows are written as they come: the peak RSS of the installed `data convert`
    (its slice workers included) does not grow with the file."""
    one = tmp_path / "one.jsonl"
    big_sharegpt_file(shared_data, one, {})
    three = tmp_path / "three.jsonl"
    three.write_bytes(one.read_bytes() * 3)
    peaks = []
    for source in (one, three):
        command = [STYLEWRAP, "data", "convert", str(source), "--output", str(tmp_path / f"{source.stem}.out.jsonl"), "--to", "messages"]
        done = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], check=True, capture_output=True, text=True)
        peaks.append(int(done.stdout.split()[-1]))
    assert peaks[1] / peaks[0] < 1.25, peaks


def test_a_block_converts_to_the_bytes_the_precise_path_writes(shared_data, tmp_path):
    """convert sharegpt -> messages writes each proved block at once: the bytes the precise path's
    writer gives row by row, awkward strings, many code points and odd rows included."""
    from stylewrap.adapters.formats import write_messages
    from stylewrap.adapters.jsonstream import dump_row
    from stylewrap.adapters.ops import _convert_slice

    rng = random.Random(5)
    points = [*range(1, 0x80), 0x85, 0xA0, 0x2028, 0x2029, 0xFEFF, 0xFFFF, 0x1F600, 0x10FFFF, *rng.sample(range(0x80, 0xD800), 300)]
    text = "x" + "".join(map(chr, points))
    odd = [
        {"conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": 'null "q" \\ </script>'}], "system": text},
        {"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}], "system": "", "tools": ""},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "function_call", "value": '{"name": "f", "arguments": {"x": 1.5e-05}}'},
                           {"from": "observation", "value": "{}"}, {"from": "gpt", "value": "b"}], "tools": "[]"},
    ]
    lines = [json.dumps(row, ensure_ascii=False).encode() for row in odd] + real_lines(shared_data)
    rng.shuffle(lines)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert sharegpt_block_prover()(source.read_bytes()) is not None  # one block, proved whole
    part = tmp_path / "out.part"
    assert _convert_slice(str(source), (0, source.stat().st_size), str(part), "sharegpt", "messages", False, {}) == (len(lines), None)
    assert part.read_bytes() == b"".join(dump_row(write_messages(precise(line))) + b"\n" for line in lines)
