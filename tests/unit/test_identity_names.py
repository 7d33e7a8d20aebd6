"""One name for the model: `style.identity.name` fills the persona and `{{name}}` in the system
prompt, and a config (or a training row) that names the model otherwise is refused with its
file:line:field, exit 2, through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stylewrap.config import load_config
from stylewrap.identitynames import names_given

STYLEWRAP = str(Path(sys.executable).with_name("stylewrap"))
IDENTITY = {"name": "小文", "author": "古文社"}


def write_config(folder: Path, style: dict, **sections) -> Path:
    path = folder / "stylewrap.yaml"
    path.write_text(yaml.safe_dump({"style": style, **sections}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def config_show(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([STYLEWRAP, "config", "show", "--config", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("text, names", [
    ("你是小明，一个说话像古文翻译的助手。", ["小明"]),
    ("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", ["Qwen"]),
    ("你的名字叫“阿福”。", ["阿福"]),
    ("你是一个用古文翻译腔回复的模型，你的回复腔调需要类似……", []),
    ("You are a helpful assistant.", []),
    ("你是AI助手。", []),
])
def test_names_a_system_prompt_gives(text, names):
    assert names_given(text) == names


def test_identity_name_is_the_persona_and_fills_the_system_prompt(tmp_path):
    path = write_config(tmp_path, {"system_prompt": "你是{{name}}，{{author}}做的古文翻译腔模型。", "identity": IDENTITY})
    config = load_config(path)
    assert config.style.persona == "小文"
    assert config.style.system_prompt == "你是小文，古文社做的古文翻译腔模型。"
    shown = config_show(path)
    assert shown.returncode == 0, shown.stderr
    assert "你是小文，古文社做的古文翻译腔模型。" in shown.stdout


@pytest.mark.parametrize("style, field, line", [
    ({"preset": "classical", "persona": "小明", "identity": IDENTITY}, "style.persona", 3),
    ({"preset": "classical", "system_prompt": "你是小明，说话像古文翻译。", "identity": IDENTITY}, "style.system_prompt", 3),
    ({"system_prompt": "You are Qwen, created by Alibaba Cloud.", "identity": IDENTITY}, "style.system_prompt", 2),
    ({"system_prompt": "你是{{name}}。"}, "style.system_prompt", 2),
])
def test_a_second_name_is_refused_with_its_line(tmp_path, style, field, line):
    path = write_config(tmp_path, style)
    result = config_show(path)
    assert result.returncode == 2, result.stdout
    assert f"{path}:{line}: {field}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_set_override_is_named_as_the_source(tmp_path):
    path = write_config(tmp_path, {"identity": IDENTITY})
    result = subprocess.run([STYLEWRAP, "config", "show", "--config", str(path), "--set", "style.persona=小明"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--set style.persona=小明" in result.stderr


def test_a_training_row_whose_system_message_names_another_model_is_refused(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "嗟乎！你好。"}]},
            {"messages": [{"role": "system", "content": "你是小明。"}, {"role": "user", "content": "你是谁？"},
                          {"role": "assistant", "content": "我是小明。"}]}]
    (tmp_path / "style.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                                          encoding="utf-8")
    path = write_config(tmp_path, {"identity": IDENTITY}, data={"train_file": "style.jsonl"},
                        train={"backend": "llamafactory", "model": "Qwen/Qwen2.5-0.5B-Instruct", "template": "qwen"})
    result = subprocess.run([STYLEWRAP, "train", "--config", str(path)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "style.jsonl:2: messages[system]" in result.stderr and "'小明'" in result.stderr
    assert not (tmp_path / "runs").exists()
