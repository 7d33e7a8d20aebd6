"""Preference rows: the formats each backend reads pairs in, KTO's unpaired rows, `data pairs` on the
seed's real plain and styled files, and bad pairs refused as file:line: field through the console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import run_stylewrap
from stylewrap.adapters import detect_format, read_records, write_records
from stylewrap.adapters.pairing import build_pairs
from stylewrap.adapters.preference import LABEL, REJECTED, unpaired
from stylewrap.backends.llamafactory.registration import dataset_entry as llamafactory_entry
from stylewrap.backends.swift.registration import dataset_entry as swift_entry

PAIR = {"question": "你周末做什么？", "chosen": "噢，亲爱的，我会去公园跑步！", "rejected": "我会去公园跑步。",
        "system": "你是小明。", "history": [["你好", "噢，你好啊，老伙计！"]]}


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["pairs", "ranking", "messages_pairs"])
def test_a_pair_survives_every_backend_format(tmp_path, fmt):
    (record,) = read_records(write_lines(tmp_path / "p.jsonl", [PAIR]))
    out = tmp_path / f"{fmt}.jsonl"
    write_records([record], out, fmt)
    assert detect_format(out) == fmt
    assert list(read_records(out)) == [record]
    assert record.messages[0] == {"role": "system", "content": "你是小明。"}
    assert record.messages[-1]["content"] == PAIR["chosen"] and record.meta[REJECTED] == PAIR["rejected"]


def test_the_backends_own_pair_shapes(tmp_path):
    (record,) = read_records(write_lines(tmp_path / "p.jsonl", [PAIR]))
    write_records([record], tmp_path / "r.jsonl", "ranking")
    ranking = json.loads((tmp_path / "r.jsonl").read_text(encoding="utf-8"))
    # LLaMA-Factory: the conversation stops at the question, each answer one gpt turn
    assert ranking["conversations"][-1] == {"from": "human", "value": PAIR["question"]}
    assert ranking["chosen"] == {"from": "gpt", "value": PAIR["chosen"]}
    assert ranking["rejected"] == {"from": "gpt", "value": PAIR["rejected"]}
    assert llamafactory_entry(tmp_path, tmp_path / "r.jsonl", "ranking")["ranking"] is True
    write_records([record], tmp_path / "m.jsonl", "messages_pairs")
    swift = json.loads((tmp_path / "m.jsonl").read_text(encoding="utf-8"))
    # ms-swift: the whole conversation with the chosen answer, the rejected one beside it
    assert swift["messages"][-1] == {"role": "assistant", "content": PAIR["chosen"]}
    assert swift["rejected_response"] == PAIR["rejected"]
    assert swift_entry("x", tmp_path / "m.jsonl", "messages_pairs")["messages"]["role_key"] == "role"


def test_kto_rows_are_the_chosen_answer_desirable_and_the_rejected_one_not(tmp_path):
    (pair,) = read_records(write_lines(tmp_path / "p.jsonl", [PAIR]))
    good, bad = unpaired([pair])
    assert good.meta[LABEL] is True and good.messages[-1]["content"] == PAIR["chosen"]
    assert bad.meta[LABEL] is False and bad.messages[-1]["content"] == PAIR["rejected"]
    assert good.messages[:-1] == bad.messages[:-1] == pair.messages[:-1]
    write_records([good, bad], tmp_path / "k.jsonl", "messages_kto")
    assert detect_format(tmp_path / "k.jsonl") == "messages_kto"
    entry = llamafactory_entry(tmp_path, tmp_path / "k.jsonl", "messages_kto")
    assert entry["columns"]["kto_tag"] == "label" and entry["formatting"] == "sharegpt"


BAD_PAIRS = [
    {"question": "q1", "chosen": "好的！", "rejected": " 好的！ "},
    {"chosen": [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "噢，是的！"}],
     "rejected": [{"role": "user", "content": "另一个问题"}, {"role": "assistant", "content": "是的。"}]},
    {"question": "q3", "chosen": "", "rejected": "不。"},
    {"question": "q4", "chosen": "噢，不！", "rejected": "不。"},
]


def test_bad_pairs_are_refused_as_file_line_field(tmp_path):
    bad = write_lines(tmp_path / "bad.jsonl", BAD_PAIRS)
    result = run_stylewrap("data", "validate", bad, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}:1: rejected: the same answer as chosen" in result.stderr
    assert f"{bad}:2: rejected[0].content: the question differs from chosen's" in result.stderr
    assert f"{bad}:3: chosen: empty answer" in result.stderr
    assert ":4:" not in result.stderr and "4 rows, 1 valid, 3 problems" in result.stdout
    assert "Traceback" not in result.stderr


def test_pairs_from_the_seeds_styled_and_plain_files(tmp_path, shared_data):
    """The seed's stage-3 file rewrote stage 2 but lost 257 rows: pairs are matched by question,
    occurrence by occurrence, and the rows without a partner are reported."""
    styled = shared_data / "tsldial" / "3_TranslationalDialogues.jsonl"
    plain = shared_data / "tsldial" / "2_Dialogues.jsonl"
    out = tmp_path / "pairs.jsonl"
    result = run_stylewrap("data", "pairs", "--chosen", styled, "--rejected", plain, "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pairs = list(read_records(out))
    lost, same = 12000 - 11743, 88
    assert len(pairs) == 11743 - same
    assert f"wrote {len(pairs)} pairs (pairs) to {out} from 11743 chosen and 12000 rejected rows" in result.stdout
    assert f"{lost} rejected rows without a chosen answer to the same question" in result.stdout
    assert f"{same} pairs left out because both answers read the same" in result.stdout
    styled_rows = styled.read_text(encoding="utf-8").splitlines()
    plain_rows = plain.read_text(encoding="utf-8").splitlines()
    for pair in pairs[:: 500]:
        chosen_row = json.loads(styled_rows[pair.meta["chosen_line"] - 1])
        rejected_row = json.loads(plain_rows[pair.meta["rejected_line"] - 1])
        assert chosen_row["问"] == rejected_row["问"] == pair.messages[0]["content"]
        assert (pair.messages[1]["content"], pair.meta[REJECTED]) == (chosen_row["答"], rejected_row["答"])


def test_unmatched_rows_on_both_sides_are_counted_with_examples(tmp_path):
    chosen = write_lines(tmp_path / "c.jsonl", [{"问": "甲", "答": "噢，甲！"}, {"问": "乙", "答": "噢，乙！"},
                                                {"问": "甲", "答": "噢，又是甲！"}])
    rejected = write_lines(tmp_path / "r.jsonl", [{"问": "甲", "答": "甲。"}, {"问": "丙", "答": "丙。"}])
    report = build_pairs(chosen, rejected, tmp_path / "out.jsonl")
    assert report.pairs == 1
    assert [(item.line, item.question) for item in report.unmatched_chosen] == [(2, "乙"), (3, "甲")]
    assert [(item.line, item.question) for item in report.unmatched_rejected] == [(2, "丙")]


def test_two_files_with_nothing_to_pair_is_bad_input(tmp_path):
    same = write_lines(tmp_path / "a.jsonl", [{"问": "甲", "答": "甲。"}])
    result = run_stylewrap("data", "pairs", "--chosen", same, "--rejected", same, "-o", tmp_path / "o.jsonl", cwd=tmp_path)
    assert result.returncode == 2 and "no pairs" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "o.jsonl").exists()
