"""Rendered backend configs, pinned. Regenerate after an intended change with
STYLEWRAP_UPDATE_GOLDEN=1 pytest tests/golden/test_backend_configs.py (and review the diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stylewrap.backends.deepspeed import DEEPSPEED_PRESETS
from stylewrap.backends.render import render_deepspeed
from stylewrap.backends.presets import load_train_config
from stylewrap.backends.train import COMMAND_FILE, render_run
from stylewrap.rundir import RunInfo

GOLDEN = Path(__file__).parent / "backends"
HUB_MODEL = ["train.model=Qwen/Qwen2.5-0.5B-Instruct", "train.template=qwen2_5"]

CASES = {
    f"{backend}-{method}": ([*HUB_MODEL, f"train.backend={backend}", f"train.method={method}"], None, None)
    for backend in ("llamafactory", "swift") for method in ("lora", "qlora", "full")
}
# multi-turn loss on the last answer only, SwanLab in local mode (docs/ecosystem.md)
for backend in ("llamafactory", "swift"):
    CASES[f"{backend}-last_turn-swanlab"] = ([*HUB_MODEL, f"train.backend={backend}", "train.loss_on=last_turn",
                                              "train.report_to=swanlab"], None, None)
# preference tuning from the base model (from an SFT run: test_preference_from_run_matches_golden)
CASES.update({
    f"{backend}-{method}": ([*HUB_MODEL, f"train.backend={backend}", f"train.preference.method={method}"],
                            None, None)
    for backend in ("llamafactory", "swift") for method in ("dpo", "orpo", "kto", "simpo")
})
CASES["seed-translational"] = ([], "seed-translational", None)
CASES["seed-classical"] = ([], "seed-classical", None)
CASES["swift-full-zero3_offload"] = ([*HUB_MODEL, "train.backend=swift", "train.method=full", "train.nproc_per_node=8"],
                                     None, "zero3_offload")


def _check(name: str, files: dict[str, str]) -> None:
    """`files` equal the golden folder `name` (rewritten first under STYLEWRAP_UPDATE_GOLDEN)."""
    folder = GOLDEN / name
    if os.environ.get("STYLEWRAP_UPDATE_GOLDEN"):
        for relative, text in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text, encoding="utf-8")
    expected = {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file()}
    assert files == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_training_config_matches_golden(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides, preset, deepspeed = CASES[name]
    config = load_train_config(None, overrides, preset)
    plan = render_run(config, tmp_path / "run", deepspeed=deepspeed, preset=preset)
    written = {name_: (tmp_path / "run" / name_).read_text(encoding="utf-8") for name_ in plan.files}
    command = written.pop(COMMAND_FILE)   # holds this machine's env paths: checked, not pinned
    assert command.startswith("#!/usr/bin/env bash\n") and "config/train.yaml" in command
    for text in written.values():
        if not text.startswith("{"):
            assert text.startswith("# Training config for ")
            assert "# Run it from the run directory with:\n#   " in text
    _check(name, written)


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_preference_from_run_matches_golden(backend, tmp_path, monkeypatch):
    """DPO on top of an SFT LoRA run: its adapter trains on and, with its base, is the reference."""
    monkeypatch.chdir(tmp_path)
    sft = tmp_path / "runs" / "sft"
    (sft / "output").mkdir(parents=True)
    (sft / "output" / "adapter_config.json").write_text("{}")
    RunInfo(run_id="sft", backend=backend, backend_version="x", base_model="Qwen/Qwen2.5-0.5B-Instruct", method="lora",
            template="qwen2_5", command="", status="succeeded", adapter_dir="output").save(sft)
    config = load_train_config(None, [*HUB_MODEL, f"train.backend={backend}", "train.preference.method=dpo",
                                      "train.preference.from_run=runs/sft", "train.preference.sft_weight=0.5"])
    plan = render_run(config, tmp_path / "run")
    text = (tmp_path / "run" / "config/train.yaml").read_text(encoding="utf-8").replace(str(tmp_path), "<project>")
    _check(f"{backend}-dpo-from-run", {"config/train.yaml": text})
    assert plan.step == "preference"


def test_seed_translational_is_the_original_run(tmp_path, monkeypatch, shared_data):
    monkeypatch.chdir(tmp_path)
    plan = render_run(load_train_config(None, [], "seed-translational"), tmp_path / "run", preset="seed-translational")
    text = (tmp_path / "run" / "config/train.yaml").read_text(encoding="utf-8")
    for line in ("template: qwen", "lora_target: q_proj,v_proj", "cutoff_len: 1024", "per_device_train_batch_size: 8",
                 "gradient_accumulation_steps: 8", "learning_rate: 5.0e-05", "lr_scheduler_type: cosine",
                 "num_train_epochs: 4.0", "val_size: 0.1", "deepspeed: config/ds_zero2.json", "fp16: true"):
        assert line in text.splitlines()
    assert "NPROC_PER_NODE=2" in text and "FORCE_TORCHRUN=1" in text
    assert plan.invocation.env["NPROC_PER_NODE"] == "2"
    # the ZeRO-2 config is the one the original run used, key for key
    rendered = json.loads((tmp_path / "run" / "config/ds_zero2.json").read_text(encoding="utf-8"))
    assert rendered == json.loads((shared_data / "tsldial" / "seed_deepspeed.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("preset", sorted(DEEPSPEED_PRESETS))
def test_deepspeed_configs_are_valid_json_with_their_stage(preset):
    config = json.loads(render_deepspeed(preset))
    stage, offload = DEEPSPEED_PRESETS[preset]
    assert config["zero_optimization"]["stage"] == stage
    assert ("offload_optimizer" in config["zero_optimization"]) == offload
    assert config["train_micro_batch_size_per_gpu"] == "auto"
