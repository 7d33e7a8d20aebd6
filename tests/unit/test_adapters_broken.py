"""A corpus of broken dataset files: each one fails with file:line: field and nothing is written."""

from __future__ import annotations

import codecs
import json

import pytest
from click.testing import CliRunner

from stylewrap.adapters import read_records
from stylewrap.cli import cli
from stylewrap.errors import DataError


def _lines(*rows) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row, ensure_ascii=False).encode()) + b"\n" for row in rows)


QA = {"问": "你好吗？", "答": "噢，老伙计，好极了！"}
ALPACA = {"instruction": "你好吗？", "input": "", "output": "噢，老伙计！"}


def _share(*turns, **extra) -> dict:
    return {"conversations": [{"from": role, "value": text} for role, text in turns], **extra}


def _msgs(*items) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in items]}


GOOD_SHARE = _share(("human", "你好"), ("gpt", "噢，亲爱的！"))
GOOD_MSGS = _msgs(("user", "你好"), ("assistant", "天啊！"))

# name -> (file name, bytes, expected line, expected field (or None), words in the message)
CORPUS = {
    "line_not_json": ("a.jsonl", _lines(QA, b'{"\xe9\x97\xae": "x", "\xe7\xad\x94": '), 2, None, "not valid JSON"),
    "byte_order_mark": ("a.jsonl", codecs.BOM_UTF8 + _lines(QA), 1, "BOM", "byte order mark"),
    "invalid_utf8_line": ("a.jsonl", _lines(QA, b'{"\xe9\x97\xae": "\xff\xfe", "\xe7\xad\x94": "b"}'), 2, "encoding", "invalid UTF-8"),
    "invalid_utf8_array": ("a.json", b'[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "\xff", "output": "b"}\n]\n', 3, "encoding", "invalid UTF-8"),
    "duplicate_key_line": ("a.jsonl", _lines(QA, '{"问": "a", "答": "b", "答": "c"}'.encode()), 2, "答", "duplicate key"),
    "duplicate_key_array": ("a.json", '[\n{"instruction": "a", "output": "b"},\n{"instruction": "a", "instruction": "x", "output": "b"}\n]'.encode(), 3, "instruction", "duplicate key"),
    "row_not_object": ("a.jsonl", _lines(QA, [1, 2]), 2, None, "must be a JSON object"),
    "missing_column": ("a.jsonl", _lines(QA, {"问": "只有问题", "topic": "宠物"}), 2, "答", "missing"),
    "empty_content": ("a.jsonl", _lines(ALPACA, {**ALPACA, "output": "  "}), 2, "output", "empty assistant content"),
    "non_string_content": ("a.jsonl", _lines(ALPACA, {**ALPACA, "output": 42}), 2, "output", "must be a string"),
    "unknown_role_tag": ("a.jsonl", _lines(GOOD_SHARE, _share(("human", "hi"), ("robot", "beep"))), 2, "conversations[1].from", "unknown role 'robot'"),
    "assistant_speaks_first": ("a.jsonl", _lines(GOOD_SHARE, _share(("gpt", "hi"), ("human", "hey"))), 2, "conversations[0].value", "turns must alternate"),
    "no_alternation": ("a.jsonl", _lines(GOOD_SHARE, _share(("human", "a"), ("human", "b"), ("gpt", "c"))), 2, "conversations[1].value", "turns must alternate"),
    "ends_with_user": ("a.jsonl", _lines(GOOD_SHARE, _share(("human", "a"), ("gpt", "b"), ("human", "c"))), 2, "conversations[2].value", "not an assistant reply"),
    "turn_missing_value": ("a.jsonl", _lines(GOOD_SHARE, {"conversations": [{"from": "human"}, {"from": "gpt", "value": "x"}]}), 2, "conversations[0].value", "missing"),
    "conversations_not_list": ("a.jsonl", _lines(GOOD_SHARE, {"conversations": 5}), 2, "conversations", "must be a list"),
    "system_in_the_middle": ("a.jsonl", _lines(GOOD_MSGS, _msgs(("user", "a"), ("assistant", "b"), ("system", "c"), ("user", "d"), ("assistant", "e"))), 2, "messages[2].content", "system message may only come first"),
    "unknown_openai_role": ("a.jsonl", _lines(GOOD_MSGS, _msgs(("user", "a"), ("bot", "b"))), 2, "messages[1].role", "unknown role 'bot'"),
    "image_content_part": ("a.jsonl", _lines(GOOD_MSGS, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x.png"}]}, {"role": "assistant", "content": "b"}]}), 2, "messages[0].content[0]", "only text content parts"),
    "loss_weight_not_number": ("a.jsonl", _lines(GOOD_MSGS, {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "loss_weight": "high"}]}), 2, "messages[1].content", "loss_weight must be a number"),
    "only_system": ("a.jsonl", _lines(GOOD_MSGS, _msgs(("system", "你是一个助手"))), 2, "messages", "only a system message"),
    "swift_string_not_json": ("a.jsonl", _lines({"conversations": json.dumps([{"from": "user", "value": "a"}, {"from": "assistant", "value": "b"}])}, {"conversations": "[{'from': oops"}), 2, "conversations", "not JSON"),
    "history_not_pairs": ("a.jsonl", _lines(ALPACA, {**ALPACA, "history": [["只有问题"]]}), 2, "history[0]", "pair"),
    "tools_wrong_type": ("a.jsonl", _lines(GOOD_SHARE, {**GOOD_SHARE, "tools": 5}), 2, "tools", "JSON string or list"),
    "array_not_closed": ("a.json", b'[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": "d"}\n', 4, None, "not closed"),
    "array_missing_comma": ("a.json", b'[\n  {"instruction": "a", "output": "b"}\n  {"instruction": "c", "output": "d"}\n]\n', 3, None, "expected ','"),
    "array_element_cut": ("a.json", b'[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "outp', 3, None, "not valid JSON"),
    "text_after_array": ("a.json", b'[\n  {"instruction": "a", "output": "b"}\n]\n]\n', 4, None, "text after the closing"),
    "unknown_columns": ("a.jsonl", _lines({"question": "a", "reply": "b"}), 1, None, "cannot tell the format"),
    "empty_file": ("a.jsonl", b"\n\n", None, None, "no rows"),
}


@pytest.fixture(params=sorted(CORPUS))
def broken(request, tmp_path):
    name, data, line, field, words = CORPUS[request.param]
    path = tmp_path / name
    path.write_bytes(data)
    return path, line, field, words


def test_reading_names_file_line_and_field(broken):
    path, line, field, words = broken
    with pytest.raises(DataError) as caught:
        list(read_records(path))
    error = caught.value
    assert error.location.file == path or str(error.location.file) == str(path)
    assert error.location.line == line
    assert error.location.field == field
    assert words in error.message
    assert "\n" not in error.one_line()


def test_convert_fails_with_one_line_and_writes_nothing(broken, tmp_path):
    path, line, field, words = broken
    out = tmp_path / "out" / "converted.jsonl"
    result = CliRunner().invoke(cli, ["data", "convert", str(path), "--to", "sharegpt", "-o", str(out)])
    assert result.exit_code == 2, result.output
    where = f"{path}:{line}" if line else str(path)
    assert where in result.output and words in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_validate_lists_the_problem_and_exits_2(broken):
    path, line, field, words = broken
    result = CliRunner().invoke(cli, ["data", "validate", str(path)])
    assert result.exit_code == 2, result.output
    expected = f"{path}:{line}: {field}" if field else (f"{path}:{line}" if line else str(path))
    assert expected in result.output
    assert words in result.output


def test_validate_reports_every_problem_and_drop_invalid_keeps_the_good_rows(tmp_path):
    rows = [QA, {"问": "", "答": "x"}, QA, b"not json", {"问": "a", "答": 3}, QA]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_lines(*rows))
    result = CliRunner().invoke(cli, ["data", "validate", str(path)])
    assert result.exit_code == 2
    for line in (2, 4, 5):
        assert f"{path}:{line}" in result.output
    assert "6 rows, 3 valid, 3 problems" in result.output

    result = CliRunner().invoke(cli, ["data", "validate", str(path), "--drop-invalid"])
    assert result.exit_code == 0, result.output
    good = [json.loads(x) for x in (tmp_path / "mixed.valid.jsonl").read_text(encoding="utf-8").splitlines()]
    assert good == [QA, QA, QA]
    rejects = [json.loads(x) for x in (tmp_path / "mixed.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == [(2, "问"), (4, None), (5, "答")]
    assert rejects[0]["row"] == {"问": "", "答": "x"}
