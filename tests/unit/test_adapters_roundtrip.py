"""Real files read into Records, written in every format and read back unchanged."""

from __future__ import annotations

import json

import pytest

from stylewrap.adapters import FORMATS, Record, detect_format, read_records, write_records

REAL_FILES = {
    "tsldial/TslDial.json": ("alpaca", 11743),
    "tsldial/3_TranslationalDialogues.jsonl": ("qa", 11743),
    "llamafactory/alpaca_zh_demo.json": ("alpaca", 1000),
    "llamafactory/glaive_toolcall_zh_demo.json": ("sharegpt", 300),
    "llamafactory/identity.json": ("alpaca", 91),
    "llamafactory/v1_sft_demo.jsonl": ("messages", 500),
}


@pytest.mark.parametrize("relative", sorted(REAL_FILES))
def test_real_file_is_detected_and_read(shared_data, relative):
    fmt, rows = REAL_FILES[relative]
    path = shared_data / relative
    assert detect_format(path) == fmt
    records = list(read_records(path))
    assert len(records) == rows
    assert all(r.messages[-1]["role"] == "assistant" for r in records)
    assert records[0].line is not None


def _holds(record: Record, fmt: str) -> bool:
    roles = {m["role"] for m in record.messages}
    if fmt == "qa":
        return roles <= {"user", "assistant"} and len(record.messages) == 2 and not record.tools
    if fmt == "alpaca":
        return roles <= {"system", "user", "assistant"}
    return True


def _without_loss_weight(record: Record) -> Record:
    messages = [{k: v for k, v in m.items() if k != "loss_weight"} for m in record.messages]
    return Record(messages, record.tools, record.meta)


TARGETS = [("alpaca", ".json"), ("sharegpt", ".json"), ("messages", ".jsonl"), ("swift", ".jsonl"), ("qa", ".jsonl")]
# every glaive row carries tools, which qa rows cannot hold
ROUND_TRIPS = [(f, t, s) for f in sorted(REAL_FILES) for t, s in TARGETS if (f, t) != ("llamafactory/glaive_toolcall_zh_demo.json", "qa")]


@pytest.mark.parametrize(("relative", "target", "suffix"), ROUND_TRIPS)
def test_every_format_round_trips(shared_data, tmp_path, relative, target, suffix):
    records = [r for r in read_records(shared_data / relative) if _holds(r, target)]
    assert records
    out = tmp_path / f"out{suffix}"
    assert write_records(iter(records), out, target) == len(records)
    assert detect_format(out) == target
    again = list(read_records(out))
    if target in ("alpaca", "qa"):  # these formats have no per-message loss weight
        records = [_without_loss_weight(r) for r in records]
    assert again == records
    if suffix == ".json":
        assert isinstance(json.loads(out.read_text(encoding="utf-8")), list)


def test_alpaca_prompt_joins_instruction_and_input_like_llamafactory(shared_data):
    first = next(read_records(shared_data / "tsldial/TslDial.json"))
    raw = json.loads((shared_data / "tsldial/TslDial.json").read_text(encoding="utf-8"))[0]
    assert first.messages == [{"role": "user", "content": raw["input"]}, {"role": "assistant", "content": raw["output"]}]


def test_typed_content_parts_and_loss_weight_survive(shared_data):
    first = next(read_records(shared_data / "llamafactory/v1_sft_demo.jsonl"))
    assert first.messages == [
        {"role": "user", "content": "hi", "loss_weight": 0.0},
        {"role": "assistant", "content": first.messages[1]["content"], "loss_weight": 1.0},
    ]


def test_tools_and_function_calls_map_to_canonical_roles(shared_data):
    record = next(read_records(shared_data / "llamafactory/glaive_toolcall_zh_demo.json"))
    assert [m["role"] for m in record.messages] == ["user", "function_call", "observation", "assistant"]
    assert json.loads(record.tools)[0]["name"] == "generate_invoice"


def test_swift_conversations_stored_as_json_string(tmp_path):
    row = {"conversations": json.dumps([{"from": "user", "value": "你好"}, {"from": "assistant", "value": "噢，老伙计！"}], ensure_ascii=False)}
    path = tmp_path / "ms.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert detect_format(path) == "swift"
    assert next(read_records(path)).messages[1] == {"role": "assistant", "content": "噢，老伙计！"}


def test_qa_keeps_extra_columns_as_meta(shared_data, tmp_path):
    record = next(read_records(shared_data / "tsldial/2_Dialogues.jsonl"))
    assert set(record.meta) == {"topic"}
    out = tmp_path / "s.jsonl"
    write_records([record], out, "sharegpt")
    assert json.loads(out.read_text(encoding="utf-8"))["topic"] == record.meta["topic"]


def test_registry_lists_the_five_builtin_formats():
    assert set(FORMATS) >= {"alpaca", "sharegpt", "messages", "swift", "qa"}
