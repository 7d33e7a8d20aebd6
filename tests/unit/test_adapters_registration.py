"""Registering datasets with LLaMA-Factory's real dataset_info.json and ms-swift's custom info."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from stylewrap.adapters import read_records, write_records
from stylewrap.backends.llamafactory.registration import register as register_llamafactory
from stylewrap.backends.swift.registration import dataset_entry as swift_dataset_registration
from stylewrap.backends.swift.registration import register as register_swift
from stylewrap.cli import cli
from stylewrap.errors import DataError


@pytest.fixture
def lf_dir(shared_data, tmp_path):
    target = tmp_path / "lf"
    target.mkdir()
    shutil.copy(shared_data / "llamafactory/dataset_info.json", target / "dataset_info.json")
    (target / "dataset_info.json").chmod(0o644)
    return target


def test_merge_keeps_every_other_entry_byte_for_byte(lf_dir, shared_data):
    original = (lf_dir / "dataset_info.json").read_text(encoding="utf-8")
    register_llamafactory(lf_dir, "tsldial", shared_data / "tsldial/TslDial.json")
    merged_text = (lf_dir / "dataset_info.json").read_text(encoding="utf-8")
    before, after = json.loads(original), json.loads(merged_text)
    assert list(after) == [*before, "tsldial"]
    assert {k: v for k, v in after.items() if k != "tsldial"} == before
    # the old text is a prefix of the new one up to the final closing brace: nothing else was touched
    assert merged_text.startswith(original.rstrip()[:-1].rstrip())
    assert after["tsldial"] == {
        "file_name": str((shared_data / "tsldial/TslDial.json").resolve()),
        "columns": {"prompt": "instruction", "query": "input", "response": "output"},
    }


def test_entries_declare_only_columns_the_file_has(lf_dir, shared_data, tmp_path):
    register_llamafactory(lf_dir, "glaive", shared_data / "llamafactory/glaive_toolcall_zh_demo.json")
    register_llamafactory(lf_dir, "seed_qa", shared_data / "tsldial/3_TranslationalDialogues.jsonl")
    v1 = tmp_path / "v1.jsonl"
    write_records(read_records(shared_data / "llamafactory/v1_sft_demo.jsonl"), v1, "messages")
    register_llamafactory(lf_dir, "v1", v1)
    info = json.loads((lf_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["glaive"]["formatting"] == "sharegpt"
    assert info["glaive"]["columns"] == {"messages": "conversations", "tools": "tools"}
    assert info["seed_qa"]["columns"] == {"prompt": "问", "query": None, "response": "答"}
    assert info["v1"]["tags"]["role_tag"] == "role" and info["v1"]["columns"] == {"messages": "messages"}


def test_file_inside_the_dataset_dir_is_registered_relative(lf_dir, shared_data):
    local = lf_dir / "mine.json"
    shutil.copy(shared_data / "llamafactory/identity.json", local)
    register_llamafactory(lf_dir, "mine", local)
    assert json.loads((lf_dir / "dataset_info.json").read_text(encoding="utf-8"))["mine"]["file_name"] == "mine.json"


def test_same_definition_again_is_a_no_op_and_a_different_one_needs_force(lf_dir, shared_data):
    register_llamafactory(lf_dir, "tsl", shared_data / "tsldial/TslDial.json")
    once = (lf_dir / "dataset_info.json").read_bytes()
    register_llamafactory(lf_dir, "tsl", shared_data / "tsldial/TslDial.json")
    assert (lf_dir / "dataset_info.json").read_bytes() == once
    with pytest.raises(DataError, match="already registered with another definition") as caught:
        register_llamafactory(lf_dir, "tsl", shared_data / "llamafactory/glaive_toolcall_zh_demo.json")
    assert caught.value.location.field == "tsl"
    assert (lf_dir / "dataset_info.json").read_bytes() == once
    register_llamafactory(lf_dir, "tsl", shared_data / "llamafactory/glaive_toolcall_zh_demo.json", force=True)
    info = json.loads((lf_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["tsl"]["formatting"] == "sharegpt"
    original = json.loads((shared_data / "llamafactory/dataset_info.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in info.items() if k != "tsl"} == original


def test_an_existing_builtin_name_is_protected(lf_dir, shared_data):
    with pytest.raises(DataError, match="--force"):
        register_llamafactory(lf_dir, "alpaca_zh_demo", shared_data / "tsldial/TslDial.json")


def test_invalid_data_is_not_registered(lf_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"问": "a", "答": "b"}\n{"问": "a"}\n', encoding="utf-8")
    before = (lf_dir / "dataset_info.json").read_bytes()
    with pytest.raises(DataError) as caught:
        register_llamafactory(lf_dir, "bad", bad)
    assert caught.value.location.line == 2
    assert (lf_dir / "dataset_info.json").read_bytes() == before
    assert sorted(p.name for p in lf_dir.iterdir()) == ["dataset_info.json"]


def test_broken_registry_file_is_reported_with_its_line(tmp_path, shared_data):
    (tmp_path / "dataset_info.json").write_text('{\n  "a": {"file_name": "x.json"},\n}\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        register_llamafactory(tmp_path, "tsl", shared_data / "tsldial/TslDial.json")
    assert caught.value.location.line == 3


def test_swift_registration_matches_ms_swift_custom_dataset_info(shared_data, tmp_path):
    entry = swift_dataset_registration("glaive", shared_data / "llamafactory/glaive_toolcall_zh_demo.json")
    assert entry == {
        "dataset_name": "glaive",
        "dataset_path": str((shared_data / "llamafactory/glaive_toolcall_zh_demo.json").resolve()),
        "messages": {"role_key": "from", "content_key": "value", "user_role": "human", "assistant_role": "gpt"},
    }
    assert swift_dataset_registration("qa", shared_data / "tsldial/2_Dialogues.jsonl")["columns"] == {"问": "query", "答": "response"}
    info = tmp_path / "custom_dataset_info.json"
    register_swift(info.parent, "glaive", shared_data / "llamafactory/glaive_toolcall_zh_demo.json")
    register_swift(info.parent, "tsl", shared_data / "tsldial/TslDial.json")
    register_swift(info.parent, "tsl", shared_data / "tsldial/TslDial.json")
    assert [e["dataset_name"] for e in json.loads(info.read_text(encoding="utf-8"))] == ["glaive", "tsl"]
    with pytest.raises(DataError, match="already registered"):
        register_swift(info.parent, "tsl", shared_data / "tsldial/2_Dialogues.jsonl")


def test_register_command_for_both_backends(lf_dir, shared_data):
    runner = CliRunner()
    source = str(shared_data / "tsldial/TslDial.json")
    result = runner.invoke(cli, ["data", "register", source, "--backend", "llamafactory", "--dataset-dir", str(lf_dir), "--name", "tsl"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["data", "register", str(shared_data / "tsldial/2_Dialogues.jsonl"), "--backend", "llamafactory",
                                 "--dataset-dir", str(lf_dir), "--name", "tsl"])
    assert result.exit_code == 2 and "--force" in result.output
    result = runner.invoke(cli, ["data", "register", source, "--backend", "swift", "--dataset-dir", str(lf_dir), "--name", "tsl"])
    assert result.exit_code == 0, result.output
    assert json.loads((lf_dir / "custom_dataset_info.json").read_text(encoding="utf-8"))[0]["dataset_name"] == "tsl"
    result = runner.invoke(cli, ["data", "register", source, "--backend", "axolotl", "--dataset-dir", str(lf_dir / "new"),
                                 "--name", "tsl"])
    # --backend chooses from the registry: an unknown one is refused with the list, nothing written
    assert result.exit_code == 2 and "'axolotl' is not one of 'llamafactory', 'swift'" in result.output
    assert not (lf_dir / "new").exists()


@pytest.mark.parametrize(("source", "fmt", "words"), [
    ("llamafactory/v1_sft_demo.jsonl", None, "content is a list of parts"),
    ("llamafactory/glaive_toolcall_zh_demo.json", "messages", "tool_calls"),
])
def test_rows_llamafactory_cannot_read_are_refused_with_a_way_out(lf_dir, shared_data, tmp_path, source, fmt, words):
    path = shared_data / source
    if fmt:
        path = tmp_path / "converted.jsonl"
        write_records(read_records(shared_data / source), path, fmt)
    before = (lf_dir / "dataset_info.json").read_bytes()
    with pytest.raises(DataError, match=words) as caught:
        register_llamafactory(lf_dir, "x", path)
    assert caught.value.location.line == 1 and "--to sharegpt" in caught.value.hint
    assert (lf_dir / "dataset_info.json").read_bytes() == before
