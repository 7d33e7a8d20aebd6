"""The incremental JSON array reader agrees with json.load wherever the chunks happen to cut."""

from __future__ import annotations

import json

import pytest

from stylewrap.adapters import jsonstream
from stylewrap.adapters.jsonstream import iter_raw_rows


def _lines_of_elements(text: str) -> list[int]:
    """1-based line where each top-level element of an indented JSON array starts."""
    return [number for number, line in enumerate(text.splitlines(), 1) if line.startswith(("  {", "    {")) and line.strip() == "{"]


WINDOWS = [("llamafactory/identity.json", chunk) for chunk in (1, 7, 64, 4096)]
WINDOWS += [("llamafactory/glaive_toolcall_zh_demo.json", chunk) for chunk in (7, 4096)]


@pytest.mark.parametrize(("relative", "chunk"), WINDOWS)
def test_any_chunk_size_gives_the_same_rows_and_lines(shared_data, monkeypatch, chunk, relative):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    path = shared_data / relative
    text = path.read_text(encoding="utf-8")
    rows = list(iter_raw_rows(path))
    assert [r.error for r in rows if r.error] == []
    assert [r.value for r in rows] == json.loads(text)
    assert [r.line for r in rows] == _lines_of_elements(text)


def test_bare_values_cut_by_the_window_are_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", 3)
    path = tmp_path / "numbers.json"
    path.write_text("[12345, true, null, \"长字符串\", {\"a\": [1, 2]}]", encoding="utf-8")
    assert [r.value for r in iter_raw_rows(path)] == [12345, True, None, "长字符串", {"a": [1, 2]}]


def test_jsonl_lines_are_numbered_from_one_and_blank_lines_skipped(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert [(r.line, r.value) for r in iter_raw_rows(path)] == [(1, {"a": 1}), (3, {"a": 2})]


def test_a_duplicate_key_in_an_array_does_not_stop_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", 5)
    path = tmp_path / "dup.json"
    path.write_text('[\n{"a": 1, "a": 2},\n{"b": 3}\n]\n', encoding="utf-8")
    rows = list(iter_raw_rows(path))
    assert [(r.line, r.field, r.value) for r in rows] == [(2, "a", None), (3, None, {"b": 3})]
