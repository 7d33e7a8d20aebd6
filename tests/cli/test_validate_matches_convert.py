"""`data validate` passes exactly the rows `data convert` (and so the backends) can use: each row
below was once passed by validate and then broke convert or was written out as something no
reader takes. Through the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import run_stylewrap

GOOD_TURNS = [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "噢，亲爱的朋友！"}]

# name -> (JSONL line, the field the error must name)
BROKEN = {
    "lone-surrogate": ('{"conversations":[{"from":"human","value":"a\\ud800b"},{"from":"gpt","value":"ok"}]}',
                       "conversations[0].value: lone surrogate"),
    "lone-low-surrogate-in-key": ('{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"ok"}],"x\\udc00":1}',
                                  "lone surrogate"),
    "tools-not-json": ('{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"ok"}],"tools":"not json"}',
                       "tools: a tools string must hold a JSON list of tools"),
    "tools-json-number": ('{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"ok"}],"tools":"5"}',
                          "tools: a tools string must hold a JSON list of tools, got int"),
    "nan": ('{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"ok"}],"score":NaN}',
            "score: NaN is not a JSON number"),
    "infinity-nested": ('{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b","w":[1,-Infinity]}]}',
                        "messages[1].w[1]: -Infinity is not a JSON number"),
}


def write_rows(path: Path, bad_line: str) -> Path:
    good = json.dumps({"conversations": GOOD_TURNS}, ensure_ascii=False)
    path.write_text(f"{good}\n{bad_line}\n", encoding="utf-8")  # the bad row is line 2
    return path


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_refuses_what_convert_cannot_write(tmp_path, case):
    line, field_message = BROKEN[case]
    source = write_rows(tmp_path / "rows.jsonl", line)
    validated = run_stylewrap("data", "validate", source, cwd=tmp_path)
    assert validated.returncode == 2, validated.stdout + validated.stderr
    assert f"{source}:2: {field_message}" in validated.stderr
    out = tmp_path / "new" / "out.jsonl"
    converted = run_stylewrap("data", "convert", source, "--to", "messages", "-o", out, cwd=tmp_path)
    assert converted.returncode == 2 and f"{source}:2:" in converted.stderr, converted.stderr
    assert "internal error" not in converted.stderr and "Traceback" not in converted.stderr
    assert not out.exists() and not out.parent.exists()  # nothing half-written, not even its folder


def test_a_json_array_file_is_held_to_the_same_rules(tmp_path):
    source = tmp_path / "rows.json"
    source.write_text('[\n{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":"b"}]},\n'
                      '{"conversations":[{"from":"human","value":"a\\ud800"},{"from":"gpt","value":"b"}]}\n]\n', encoding="utf-8")
    validated = run_stylewrap("data", "validate", source, cwd=tmp_path)
    assert validated.returncode == 2 and f"{source}:3: conversations[0].value: lone surrogate" in validated.stderr


def test_what_validate_passes_convert_writes_and_reads_back(tmp_path):
    rows = [
        {"conversations": GOOD_TURNS, "tools": json.dumps([{"name": "f", "parameters": {}}])},
        {"conversations": GOOD_TURNS, "score": 0.5, "emoji": "😀 \\ud83d"},
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=True) + "\n" for row in rows), encoding="utf-8")
    assert run_stylewrap("data", "validate", source, cwd=tmp_path).returncode == 0
    out = tmp_path / "out.jsonl"
    converted = run_stylewrap("data", "convert", source, "--to", "messages", "-o", out, cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    assert run_stylewrap("data", "validate", out, cwd=tmp_path).returncode == 0
