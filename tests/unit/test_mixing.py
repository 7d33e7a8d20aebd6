"""`style.identity` and `data.mix` reach the rows a backend trains on: the run's converted
dataset, read back in each backend's own format (real data: LLaMA-Factory's identity.json and
alpaca_zh_demo.json, the TslDial style rows)."""

from __future__ import annotations

import json

import pytest

from stylewrap.backends.base import get_backend
from stylewrap.backends.rundata import write_dataset
from stylewrap.config import load_config
from stylewrap.errors import InputError


def rows_of(path):
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]


def answers(row) -> list[str]:
    turns = row.get("messages") or row.get("conversations")
    return [t.get("content", t.get("value")) for t in turns if t.get("role", t.get("from")) in ("assistant", "gpt")]


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_identity_and_general_rows_are_trained_on(backend, tmp_path, shared_data, style_file):
    config = load_config(None, [
        f"data.train_file={style_file}",
        'style.identity={"name": "小译", "author": "翻译腔工作室", "file": "%s"}' % (shared_data / "llamafactory" / "identity.json"),
        'data.mix=[{"file": "%s", "ratio": 0.5}]' % (shared_data / "llamafactory" / "alpaca_zh_demo.json"),
    ], search=False)
    unit = get_backend(backend)
    dataset = write_dataset(unit, config, tmp_path / "data", "style")
    general = str(shared_data / "llamafactory" / "alpaca_zh_demo.json")
    assert dataset["rows"] == 20 and dataset["added"] == {"identity": 91, general: 10}
    (written,) = (tmp_path / "data").glob(f"style{unit.data_suffix}")
    texts = [answer for row in rows_of(written) for answer in answers(row)]
    assert len(rows_of(written)) == 20 + 91 + 10
    assert any("小译" in t and "翻译腔工作室" in t for t in texts)
    assert not any("{{" in t for t in texts)


def test_identity_without_mix_adds_nothing_and_an_unknown_placeholder_is_refused(tmp_path, style_file):
    config = load_config(None, [f"data.train_file={style_file}",
                                'style.identity={"name": "小译", "author": "A", "mix": false}'], search=False)
    assert "added" not in write_dataset(get_backend("swift"), config, tmp_path / "a", "style")
    bad = tmp_path / "identity.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "I am {{nickname}}"}]}) + "\n")
    config = load_config(None, [f"data.train_file={style_file}",
                                'style.identity={"name": "x", "author": "y", "file": "%s"}' % bad], search=False)
    with pytest.raises(InputError, match="placeholder"):
        write_dataset(get_backend("swift"), config, tmp_path / "b", "style")


def test_builtin_identity_rows_fill_both_placeholder_spellings(tmp_path, style_file):
    config = load_config(None, [f"data.train_file={style_file}", 'style.identity={"name": "小译", "author": "某工作室"}'],
                         search=False)
    dataset = write_dataset(get_backend("llamafactory"), config, tmp_path / "d", "style")
    rows = rows_of(tmp_path / "d" / "style.json")
    assert dataset["added"] == {"identity": 10}
    who = next(row for row in rows if row["conversations"][0]["value"] == "你是谁？")
    assert who["conversations"][1]["value"] == "我是小译，由某工作室打造的助手。"
