"""The gpu-fast preset (bench/gpu measured it on H200s), rendered for each backend and pinned.
Regenerate after an intended change with STYLEWRAP_UPDATE_GOLDEN=1 (and review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stylewrap.backends.train import COMMAND_FILE, load_train_config, render_run

GOLDEN = Path(__file__).parent / "gpu-fast"


def _render(backend: str, tmp_path: Path) -> str:
    # the backend comes from the config, as `stylewrap train --preset gpu-fast` alone would see it;
    # stylewrap then applies the preset's block for that backend
    overrides = ["train.model=Qwen/Qwen2.5-7B-Instruct", "train.template=qwen", f"train.backend={backend}"]
    config = load_train_config(None, overrides, "gpu-fast")
    plan = render_run(config, tmp_path / "run", preset="gpu-fast")
    assert COMMAND_FILE in plan.files
    return (tmp_path / "run" / "config" / "train.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_gpu_fast_renders_as_measured(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = _render(backend, tmp_path)
    golden = GOLDEN / backend / "train.yaml"
    if os.environ.get("STYLEWRAP_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_gpu_fast_settings_are_the_fast_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = {backend: set(_render(backend, tmp_path / backend).splitlines()) for backend in ("llamafactory", "swift")}
    assert {"bf16: true", "flash_attn: sdpa", "enable_liger_kernel: true", "disable_gradient_checkpointing: true",
            "packing: true", "neat_packing: true", "per_device_train_batch_size: 16", "lora_dropout: 0.0",
            "gradient_accumulation_steps: 1"} <= lines["llamafactory"]
    # ms-swift packs only with flash-attn: with SDPA it gets length-grouped batches of 80 rows instead
    assert {"torch_dtype: bfloat16", "attn_impl: sdpa", "use_liger_kernel: true", "gradient_checkpointing: false",
            "group_by_length: true", "per_device_train_batch_size: 80"} <= lines["swift"]
    assert "packing: true" not in lines["swift"]


def test_backend_flag_picks_the_preset_block_and_user_flags_win(tmp_path):
    swift = load_train_config(None, ["train.backend=llamafactory"], "gpu-fast", backend="swift")
    assert swift.train.per_device_train_batch_size == 80 and swift.train.extra_args == {"group_by_length": True}
    mine = load_train_config(None, ["train.per_device_train_batch_size=8", "train.extra_args.seed_note=1"],
                             "gpu-fast", backend="llamafactory")
    assert mine.train.per_device_train_batch_size == 8 and mine.train.packing is True
    assert mine.train.extra_args == {"seed_note": 1}
