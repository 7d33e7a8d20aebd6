"""`data.mix: [{dataset: NAME}]`: a name as each backend names datasets, resolved by the backend's
own registry code in its env (LLaMA-Factory `get_dataset_list` over dataset_info.json, ms-swift
`DatasetSyntax`), offline: a name that points at a hub is used from the hub's local cache, else
refused with the field and the reason; the run records which data went in at which ratio."""

from __future__ import annotations

import json
import shutil

import pytest

from stylewrap.backends.base import get_backend
from stylewrap.backends.rundata import write_dataset
from stylewrap.config import load_config
from stylewrap.errors import ConfigError, InputError

pytestmark = pytest.mark.integration


def general_answers(data_dir, unit) -> list[str]:
    (written,) = data_dir.glob(f"style{unit.data_suffix}")
    text = written.read_text(encoding="utf-8")
    rows = json.loads(text) if written.suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    turns = [row.get("messages") or row.get("conversations") for row in rows[20:]]
    return [turn[-1].get("content", turn[-1].get("value")) for turn in turns]


def test_a_name_in_llamafactorys_dataset_info_is_mixed_in(tmp_path, shared_data, style_file):
    config = load_config(None, [f"data.train_file={style_file}", "train.backend=llamafactory",
                                'data.mix=[{"dataset": "alpaca_zh_demo", "ratio": 0.25, "registry": "%s"}]'
                                % (shared_data / "llamafactory" / "dataset_info.json")], search=False)
    unit = get_backend("llamafactory")
    dataset = write_dataset(unit, config, tmp_path / "data", "style")
    assert dataset["added"] == {"alpaca_zh_demo": 5}
    assert dataset["mix"] == [{"source": "alpaca_zh_demo", "ratio": 0.25, "rows": 5}]
    demo = json.loads((shared_data / "llamafactory" / "alpaca_zh_demo.json").read_text(encoding="utf-8"))
    outputs = {row["output"] for row in demo}
    mixed = general_answers(tmp_path / "data", unit)
    assert len(mixed) == 5 and set(mixed) <= outputs


def test_a_hub_only_name_is_refused_offline_then_read_from_the_hub_cache(tmp_path, shared_data, style_file, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    overrides = [f"data.train_file={style_file}", "train.backend=swift",
                 'data.mix=[{"dataset": "alpaca-gpt4-data-zh", "ratio": 0.5}]']
    unit = get_backend("swift")
    with pytest.raises(InputError) as refused:
        write_dataset(unit, load_config(None, overrides, search=False), tmp_path / "a", "style")
    message = str(refused.value) + " " + str(refused.value.location)
    assert "data.mix[0].dataset" in message and "AI-ModelScope/alpaca-gpt4-data-zh" in message
    assert "not in the hub's cache" in message
    # the same name once ModelScope's cache holds it (where `modelscope` downloads datasets to)
    cached = tmp_path / "ms-cache" / "datasets" / "AI-ModelScope" / "alpaca-gpt4-data-zh"
    cached.mkdir(parents=True)
    shutil.copy(shared_data / "llamafactory" / "alpaca_zh_demo.json", cached / "train.json")
    dataset = write_dataset(unit, load_config(None, overrides, search=False), tmp_path / "b", "style")
    assert dataset["added"] == {"alpaca-gpt4-data-zh": 10}


def test_an_unregistered_llamafactory_name_is_refused(tmp_path, shared_data, style_file):
    config = load_config(None, [f"data.train_file={style_file}", "train.backend=llamafactory",
                                'data.mix=[{"dataset": "no_such_set", "ratio": 0.25, "registry": "%s"}]'
                                % (shared_data / "llamafactory" / "dataset_info.json")], search=False)
    with pytest.raises(InputError, match="Undefined dataset no_such_set"):
        write_dataset(get_backend("llamafactory"), config, tmp_path / "data", "style")
    assert not (tmp_path / "data").exists()


def test_a_mix_entry_needs_one_source():
    with pytest.raises(ConfigError, match="give one of file or dataset"):
        load_config(None, ['data.mix=[{"file": "a.json", "dataset": "b", "ratio": 0.2}]'], search=False)
