"""Files stylewrap writes and registers, read back by each backend's own data code in its own env."""

from __future__ import annotations

import json
import shutil
from itertools import islice
from pathlib import Path

import pytest

from backendloaders import backend_python, load_with_backend
from stylewrap.adapters import Record, read_records, write_records
from stylewrap.backends.llamafactory.registration import register as register_llamafactory
from stylewrap.backends.swift.registration import register as register_swift

pytestmark = pytest.mark.integration
SYSTEM = "你是一个说话带西式翻译腔的朋友。"
ROWS = 120


def _two_turn_rows(shared_data: Path) -> list[Record]:
    """Real TslDial answers paired into two-turn conversations with a system prompt."""
    singles = list(islice(read_records(shared_data / "tsldial/TslDial.json"), 2 * 40))
    return [
        Record([{"role": "system", "content": SYSTEM}, *first.messages, *second.messages])
        for first, second in zip(singles[::2], singles[1::2])
    ]


@pytest.fixture(scope="module")
def written(shared_data, tmp_path_factory) -> dict[str, tuple[Path, str, list[Record]]]:
    """name -> (file, format, the records written): every format, from real rows."""
    out = tmp_path_factory.mktemp("datasets")
    tsl = list(islice(read_records(shared_data / "tsldial/TslDial.json"), ROWS))
    plan = {
        "sw_alpaca": ("alpaca", "alpaca.json", tsl + _two_turn_rows(shared_data)),
        "sw_sharegpt": ("sharegpt", "glaive.jsonl", list(read_records(shared_data / "llamafactory/glaive_toolcall_zh_demo.json"))),
        "sw_messages": ("messages", "v1.jsonl", list(islice(read_records(shared_data / "llamafactory/v1_sft_demo.jsonl"), ROWS))),
        "sw_swift": ("swift", "swift.jsonl", tsl + _two_turn_rows(shared_data)),
        "sw_qa": ("qa", "qa.jsonl", list(islice(read_records(shared_data / "tsldial/3_TranslationalDialogues.jsonl"), ROWS))),
    }
    result = {}
    for name, (fmt, file_name, records) in plan.items():
        path = out / file_name
        assert write_records(records, path, fmt) == len(records)
        result[name] = (path, fmt, records)
    return result


LF_ROLES = {"function_call": "function"}


def test_llamafactory_reads_every_registered_format(written, shared_data, tmp_path):
    python = backend_python("llamafactory")
    dataset_dir = tmp_path / "lf"
    dataset_dir.mkdir()
    # register into a copy of LLaMA-Factory's real registry, which its parser then reads whole
    shutil.copy(shared_data / "llamafactory/dataset_info.json", dataset_dir / "dataset_info.json")
    (dataset_dir / "dataset_info.json").chmod(0o644)
    for name, (path, fmt, _) in written.items():
        register_llamafactory(dataset_dir, name, path, fmt)
    loaded = load_with_backend(python, "llamafactory_load.py", str(dataset_dir), *written, tmp_path=tmp_path)
    for name, (_, fmt, records) in written.items():
        rows = loaded[name]
        assert len(rows) == len(records), name
        for row, record in zip(rows, records):
            system = record.messages[0]["content"] if record.messages[0]["role"] == "system" else ""
            turns = [{"role": LF_ROLES.get(m["role"], m["role"]), "content": m["content"]} for m in record.messages if m["role"] != "system"]
            assert (row["_system"] or "") == system, name  # a row without the column reads as None
            assert row["_prompt"] + row["_response"] == turns, name
            assert (row["_tools"] or "") == (record.tools or ""), name


SWIFT_ROLES = {"function_call": "tool_call", "observation": "tool_response"}


def test_swift_reads_every_registered_format(written, tmp_path):
    python = backend_python("swift")
    info = tmp_path / "custom_dataset_info.json"
    for name, (path, fmt, _) in written.items():
        register_swift(info.parent, name, path, fmt)
    loaded = load_with_backend(python, "swift_load.py", str(info), *written, tmp_path=tmp_path)
    for name, (_, fmt, records) in written.items():
        rows = loaded[name]
        assert len(rows) == len(records), name
        for row, record in zip(rows, records):
            expected = [{"role": SWIFT_ROLES.get(m["role"], m["role"]), "content": m["content"]} for m in record.messages]
            assert [{"role": m["role"], "content": m["content"]} for m in row["messages"]] == expected, name
            assert (row["tools"] or None) == (json.loads(record.tools or "null") or None), name


@pytest.fixture(scope="module")
def preference_files(shared_data, tmp_path_factory) -> dict[str, tuple[Path, str, list[Record]]]:
    """Real seed pairs (styled chosen, plain rejected) written in every preference format."""
    from stylewrap.adapters.pairing import build_pairs
    from stylewrap.adapters.preference import unpaired

    out = tmp_path_factory.mktemp("preference")
    seed = shared_data / "tsldial"
    for name in ("3_TranslationalDialogues.jsonl", "2_Dialogues.jsonl"):
        (out / name).write_text("".join((seed / name).open(encoding="utf-8").readlines()[:60]), encoding="utf-8")
    build_pairs(out / "3_TranslationalDialogues.jsonl", out / "2_Dialogues.jsonl", out / "seed_pairs.jsonl")
    pairs = [Record(r.messages, r.tools, {"rejected_response": r.meta["rejected_response"]})
             for r in read_records(out / "seed_pairs.jsonl")]
    files = {}
    for name, fmt, records in (("pf_pairs", "pairs", pairs), ("pf_ranking", "ranking", pairs),
                               ("pf_messages_pairs", "messages_pairs", pairs),
                               ("pf_kto", "messages_kto", list(unpaired(pairs)))):
        path = out / f"{name}.jsonl"
        write_records(records, path, fmt)
        files[name] = (path, fmt, records)
    return files


def test_llamafactory_reads_the_preference_formats(preference_files, tmp_path):
    python = backend_python("llamafactory")
    for name, (path, fmt, _) in preference_files.items():
        if fmt != "messages_pairs":    # ms-swift's shape: LLaMA-Factory's registration refuses it
            register_llamafactory(tmp_path, name, path, fmt)
    pairwise = load_with_backend(python, "llamafactory_load.py", "--stage", "rm", str(tmp_path), "pf_pairs", "pf_ranking",
                                 tmp_path=tmp_path)
    for name in ("pf_pairs", "pf_ranking"):
        records = preference_files[name][2]
        assert len(pairwise[name]) == len(records) > 40
        for row, record in zip(pairwise[name], records):
            assert row["_prompt"] == record.messages[:-1]
            assert row["_response"] == [record.messages[-1], {"role": "assistant", "content": record.meta["rejected_response"]}]
    kto = load_with_backend(python, "llamafactory_load.py", "--stage", "kto", str(tmp_path), "pf_kto", tmp_path=tmp_path)
    records = preference_files["pf_kto"][2]
    assert len(kto["pf_kto"]) == len(records)
    for row, record in zip(kto["pf_kto"], records):
        # LLaMA-Factory puts a desirable answer first and an empty one second; undesirable the other way round
        answer, empty = {"role": "assistant", "content": record.messages[-1]["content"]}, {"role": "assistant", "content": ""}
        assert row["_response"] == ([answer, empty] if record.meta["label"] else [empty, answer])


def test_swift_reads_the_preference_formats(preference_files, tmp_path):
    python = backend_python("swift")
    info = tmp_path / "custom_dataset_info.json"
    for name in ("pf_pairs", "pf_messages_pairs", "pf_kto"):
        path, fmt, _ = preference_files[name]
        register_swift(info.parent, name, path, fmt)
    loaded = load_with_backend(python, "swift_load.py", str(info), "pf_pairs", "pf_messages_pairs", "pf_kto", tmp_path=tmp_path)
    for name in ("pf_pairs", "pf_messages_pairs", "pf_kto"):
        records = preference_files[name][2]
        assert len(loaded[name]) == len(records) > 40, name
        for row, record in zip(loaded[name], records):
            assert [{"role": m["role"], "content": m["content"]} for m in row["messages"]] == record.messages, name
            if name == "pf_kto":
                assert bool(row["label"]) is record.meta["label"]
            else:
                assert row["rejected_response"] == record.meta["rejected_response"], name
