"""The defaults a GPU run gets: `stylewrap train` with nothing but a model and data, planned for one
H200 (140 GiB free) and the Qwen2.5-7B shape, with liger-kernel in the backend env: the fast
settings bench/gpu measured (docs/benchmarks.md "gpu"), rendered for each backend and pinned.
Regenerate after an intended change with STYLEWRAP_UPDATE_GOLDEN=1 (and review the diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stylewrap.backends.presets import load_train_config
from stylewrap.backends.train import render_run
from conftest import make_venv

GOLDEN = Path(__file__).parent / "auto"
MODEL_ID = "Qwen/Qwen2.5-7B-Instruct"
QWEN25_7B = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
             "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
             "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False}


@pytest.fixture
def h200_setup(tmp_path, monkeypatch, shared_data):
    """A downloaded model's config and tokenizer in the Hugging Face cache (no weights: planning
    reads only those), backend envs holding liger-kernel, and the real TslDial rows."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    snapshot = tmp_path / "hf" / "hub" / f"models--{MODEL_ID.replace('/', '--')}" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(QWEN25_7B), encoding="utf-8")
    _one_token_a_character().save(str(snapshot / "tokenizer.json"))
    overrides = [f"train.model={MODEL_ID}", "train.gpu_memory_gib=140",
                 f"data.train_file={shared_data / 'tsldial' / 'TslDial.json'}"]
    for backend in ("llamafactory", "swift"):
        venv = make_venv(tmp_path / f"{backend}-env", distributions={"liger-kernel": "0.8.5"})
        overrides.append(f"backends.{backend}.venv={venv}")
    return overrides


def _one_token_a_character():
    """A stand-in for Qwen's tokenizer that needs no download or training (so the plan is the same
    on every machine): one token a character, a little above Qwen's count on Chinese text."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return tokenizer


def _render(overrides: list[str], backend: str, out: Path) -> str:
    """The rendered config, with the folder stylewrap is installed in (the varlen plugin's path) named
    the same on every machine."""
    import stylewrap

    render_run(load_train_config(None, [*overrides, f"train.backend={backend}"]), out)
    text = (out / "config" / "train.yaml").read_text(encoding="utf-8")
    return text.replace(str(Path(stylewrap.backends.__file__).parent), "<stylewrap.backends>")


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_gpu_defaults_render_as_measured(backend, h200_setup, tmp_path):
    text = _render(h200_setup, backend, tmp_path / "run")
    golden = GOLDEN / backend / "train.yaml"
    if os.environ.get("STYLEWRAP_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_gpu_defaults_are_the_fast_settings(h200_setup, tmp_path):
    lines = {backend: set(_render(h200_setup, backend, tmp_path / backend).splitlines())
             for backend in ("llamafactory", "swift")}
    # what bench/gpu measured fastest on one H200: 16 neat-packed rows of 1,024 tokens, no recomputation
    assert {"bf16: true", "flash_attn: sdpa", "enable_liger_kernel: true", "disable_gradient_checkpointing: true",
            "packing: true", "neat_packing: true", "per_device_train_batch_size: 16", "lora_dropout: 0.0",
            "gradient_accumulation_steps: 1", "dataloader_num_workers: 4"} <= lines["llamafactory"]
    # ms-swift packs only with flash attention: without flash-attn, through PyTorch's own varlen
    # FlashAttention kernel, registered by stylewrap's plugin; the same 16 packed rows
    assert {"torch_dtype: bfloat16", "attn_impl: stylewrap_varlen", "- <stylewrap.backends>/swift/varlen_attention.py",
            "use_liger_kernel: true", "gradient_checkpointing: false", "packing: true",
            "per_device_train_batch_size: 16", "gradient_accumulation_steps: 1"} <= lines["swift"]
    # the same system prompt in every row of both backends (not each template's own)
    assert "default_system: You are a helpful assistant." in lines["llamafactory"]
    assert "system: You are a helpful assistant." in lines["swift"]


def test_without_a_gpu_the_defaults_stay_the_backends(h200_setup, tmp_path):
    text = _render([*h200_setup, "train.gpu_memory_gib=0"], "llamafactory", tmp_path / "cpu")
    assert "stylewrap chose" not in text
    assert {"per_device_train_batch_size: 4", "gradient_accumulation_steps: 4"} <= set(text.splitlines())
    for key in ("bf16", "flash_attn", "packing", "enable_liger_kernel", "disable_gradient_checkpointing"):
        assert f"\n{key}:" not in text
