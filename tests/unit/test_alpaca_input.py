"""An alpaca row's `input` stays its own column through a conversion to alpaca (ChatGLM-Tuning's
alpaca data has instruction + input); formats with one prompt get LLaMA-Factory's join."""

from __future__ import annotations

import json

from stylewrap.adapters import read_records, write_records

ROWS = [
    {"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "", "input": "你看过《泰坦尼克号》吗", "output": "我的上帝！当然啦。"},   # TslDial.json's shape
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat well."},
]


def test_alpaca_to_alpaca_keeps_instruction_and_input_apart(tmp_path):
    source = tmp_path / "alpaca_data_en.json"
    source.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    target = tmp_path / "out.json"
    write_records(read_records(source, "alpaca"), target, "alpaca")
    assert json.loads(target.read_text(encoding="utf-8")) == ROWS


def test_a_single_prompt_format_gets_the_join_and_an_edited_prompt_is_not_split(tmp_path):
    source = tmp_path / "a.json"
    source.write_text(json.dumps(ROWS[:1]), encoding="utf-8")
    record = next(iter(read_records(source, "alpaca")))
    assert record.messages[0]["content"] == "Translate to French\nGood morning"
    record.messages[0]["content"] = "Translate to German\nGood morning"
    write_records([record], tmp_path / "b.json", "alpaca")
    assert json.loads((tmp_path / "b.json").read_text())[0]["input"] == ""
