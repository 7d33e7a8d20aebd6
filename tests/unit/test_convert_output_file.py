"""A sliced convert's output file: its first part is renamed into place, not copied; the file rules still hold.

The parts of a JSON Lines convert are joined by renaming the first part into place and appending
the others, so the output must still be the whole file, keep an existing file's permissions, write
through a symlink, and leave the old file untouched (and no scratch files) when the input is bad.
"""

from __future__ import annotations

import os
import stat

from stylewrap.adapters.files import read_records, write_records
from stylewrap.adapters.ops import convert
from stylewrap.errors import DataError
from tests.unit.test_adapters_typedrows import big_sharegpt_file

import pytest


def _expected(source, tmp_path) -> bytes:
    slow = tmp_path / "slow.jsonl"
    write_records(read_records(source, "sharegpt"), slow, "messages")  # one process
    return slow.read_bytes()


def test_replacing_a_file_keeps_its_mode_and_holds_every_part(shared_data, tmp_path):
    source = tmp_path / "big.jsonl"
    big_sharegpt_file(shared_data, source, {})
    output = tmp_path / "out.jsonl"
    output.write_bytes(b"old\n")
    output.chmod(0o640)
    rows = convert(source, output, "messages")
    assert output.read_bytes() == _expected(source, tmp_path)
    assert rows == output.read_bytes().count(b"\n")
    assert stat.S_IMODE(output.stat().st_mode) == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["big.jsonl", "out.jsonl", "slow.jsonl"]


def test_a_symlinked_output_is_written_through(shared_data, tmp_path):
    source = tmp_path / "big.jsonl"
    big_sharegpt_file(shared_data, source, {})
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "out.jsonl"
    real.write_bytes(b"old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    convert(source, link, "messages")
    assert link.is_symlink() and real.read_bytes() == _expected(source, tmp_path)


def test_a_bad_row_in_the_last_slice_leaves_the_old_output_and_no_scratch_files(shared_data, tmp_path):
    source = tmp_path / "big.jsonl"
    rows = big_sharegpt_file(shared_data, source, {})
    lines = source.read_bytes().split(b"\n")
    lines[rows - 5] = b'{"conversations":[{"from":"gpt","value":"a"}]}'
    source.write_bytes(b"\n".join(lines))
    output = tmp_path / "out.jsonl"
    output.write_bytes(b"old\n")
    with pytest.raises(DataError) as caught:
        convert(source, output, "messages")
    assert f"{source}:{rows - 4}:" in str(caught.value.location)
    assert output.read_bytes() == b"old\n"
    assert sorted(os.listdir(tmp_path)) == ["big.jsonl", "out.jsonl"]


def test_a_json_array_output_is_the_one_process_array(shared_data, tmp_path):
    """A .json output is one JSON array: blocks of rows are joined as its elements, the first without a comma."""
    source = tmp_path / "big.jsonl"
    big_sharegpt_file(shared_data, source, {})
    output, slow = tmp_path / "out.json", tmp_path / "slow.json"
    convert(source, output, "messages")
    write_records(read_records(source, "sharegpt"), slow, "messages")
    assert output.read_bytes() == slow.read_bytes()
