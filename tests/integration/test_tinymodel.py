from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stylewrap.backends.envs import env_python
from stylewrap.demogrammar import grammar
from stylewrap.tinymodel import STAMP_FILE, build_tiny_model

CHECK_SCRIPT = Path(__file__).with_name("tinymodel_check.py")

pytestmark = pytest.mark.integration


def test_tiny_model_is_a_small_complete_model_folder(tiny_model):
    names = {path.name for path in tiny_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} <= names
    assert (tiny_model / "model.safetensors").stat().st_size < 2_000_000
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["architectures"] == ["Qwen2ForCausalLM"]
    tokenizer_config = json.loads((tiny_model / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tokenizer_config["chat_template"]
    assert json.loads((tiny_model / "generation_config.json").read_text())["eos_token_id"] == config["eos_token_id"]
    vocab = json.loads((tiny_model / "tokenizer.json").read_text())["model"]["vocab"]
    assert 1000 <= len(vocab) <= 2000


def test_building_again_from_the_same_recipe_reuses_the_folder(tiny_model):
    before = (tiny_model / "model.safetensors").stat().st_mtime_ns
    again = build_tiny_model(tiny_model)
    assert again == tiny_model
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == before
    assert json.loads((tiny_model / STAMP_FILE).read_text())["recipe"]


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_each_backend_loads_generates_and_templates_it_like_chatml(tiny_model, backend):
    python = env_python(backend)
    assert python is not None, f"no {backend} environment: run `stylewrap backend install {backend}`"
    completed = subprocess.run(
        [str(python), str(CHECK_SCRIPT), str(tiny_model), backend],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["eos_token"] == "<|im_end|>"
    assert report["new_tokens"] == 4
    assert report["round_trip"].startswith("<|im_start|>system\n你是一个说话带翻译腔的助手。<|im_end|>\n<|im_start|>user\n")
    # the backend's `qwen` template (training mode) produces exactly the tokenizer's own template
    assert report["backend_ids"] == report["own_ids"]
    # a row without a system prompt gets the backend's default one, which pretraining covered
    rendered = report["no_system_rendering"]
    systems = [s for s in grammar()["system_prompts"] if s]
    assert any(rendered.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n") for system in systems), rendered
