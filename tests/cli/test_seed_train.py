"""The seeds' training runs through the console script (`render` / `train --dry-run`): what the
presets pin and say, DeepSpeed on one process, hub dataset ids, and rows over data.max_tokens
counted with the model's own tokenizer (the tiny local model's)."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import make_venv
from console import run_stylewrap

STYLED = "我的上帝！当然啦，我敢发誓，那可是我最喜欢的电影之一。你呢，亲爱的？"


def write_project(folder, config: dict):
    folder.mkdir(exist_ok=True)
    (folder / "stylewrap.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return folder


def rendered(out) -> dict:
    return yaml.safe_load((out / "config" / "train.yaml").read_text(encoding="utf-8"))


def test_seed_translational_pins_the_seed_and_names_what_comes_from_elsewhere(tmp_path, shared_data):
    project = write_project(tmp_path / "p", {
        "data": {"train_file": str(shared_data / "tsldial" / "TslDial.json")},
        # a project's own values: the first two the preset pins, the last it does not
        "train": {"lora_rank": 64, "max_steps": 60, "packing": True}})
    result = run_stylewrap("render", "--preset", "seed-translational", "--nproc-per-node", "1", "--out", tmp_path / "out", cwd=project)
    assert result.returncode == 0, result.stderr
    config = rendered(tmp_path / "out")
    assert config["lora_rank"] == 8 and "max_steps" not in config and "save_total_limit" not in config
    assert config["lr_scheduler_type"] == "cosine" and config["num_train_epochs"] == 4.0
    notice = next(line for line in result.stderr.splitlines() if "values that are not the preset's" in line)
    assert "train.packing=true (stylewrap.yaml:" in notice and "data.train_file=" in notice
    assert "lora_rank" not in notice and "max_steps" not in notice
    # the same words in the rendered config's header, for whoever reads the run later
    assert "# preset seed-translational: values that are not the preset's" in (tmp_path / "out" / "config" / "train.yaml").read_text()
    # a --set over a pinned value wins, and is named with the seed's value it replaces
    result = run_stylewrap("render", "--preset", "seed-translational", "--nproc-per-node", "1", "--set", "train.lora_rank=16",
                           "--out", tmp_path / "out2", cwd=project)
    assert result.returncode == 0, result.stderr
    assert rendered(tmp_path / "out2")["lora_rank"] == 16
    assert "train.lora_rank=16 (--set, not the preset's 8)" in result.stderr


def test_deepspeed_is_left_out_on_one_process_and_named_on_several(tmp_path, shared_data):
    project = write_project(tmp_path / "p", {"data": {"train_file": str(shared_data / "tsldial" / "TslDial.json")}})
    one = run_stylewrap("render", "--preset", "seed-translational", "--nproc-per-node", "1", "--out", tmp_path / "one", cwd=project)
    assert one.returncode == 0, one.stderr
    assert "deepspeed" not in rendered(tmp_path / "one") and not list((tmp_path / "one" / "config").glob("ds_*.json"))
    assert "DeepSpeed zero2 left out: one process" in one.stderr
    assert "stylewrap backend install llamafactory --deepspeed" in one.stderr
    two = run_stylewrap("render", "--preset", "seed-translational", "--out", tmp_path / "two", cwd=project)
    assert two.returncode == 0, two.stderr
    assert rendered(tmp_path / "two")["deepspeed"] == "config/ds_zero2.json"   # the seed's 2 GPUs keep ZeRO-2
    # training on two processes with an env that lacks DeepSpeed stops before the backend starts
    env_dir = tmp_path / "envs"
    make_venv(env_dir / "llamafactory", distributions={"llamafactory": "0.9.5", "torch": "2.13.0"},
              scripts={"llamafactory-cli": "raise SystemExit('the backend must not start')\n"})
    run = run_stylewrap("train", "--preset", "seed-translational", cwd=project, env={"STYLEWRAP_ENVS_DIR": str(env_dir)})
    assert run.returncode == 2, run.stderr
    assert "DeepSpeed is not in llamafactory's env" in run.stderr and "stylewrap backend install llamafactory --deepspeed" in run.stderr
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


@pytest.mark.parametrize("backend", ["swift", "llamafactory"])
def test_a_hub_dataset_id_reaches_the_backend(tmp_path, backend):
    project = write_project(tmp_path / "p", {})
    result = run_stylewrap("render", "--preset", "seed-classical", "--backend", backend, "--set",
                           "data.train_file=swift/classical_chinese_translate", "--set", "data.format=swift",
                           "--out", tmp_path / "out", cwd=project)
    assert result.returncode == 0, result.stderr
    config, out = rendered(tmp_path / "out"), tmp_path / "out"
    command = (out / "config" / "command.sh").read_text(encoding="utf-8")
    if backend == "swift":
        assert config["dataset"] == "swift/classical_chinese_translate" and "custom_dataset_info" not in config
    else:
        info = json.loads((out / "data" / "dataset_info.json").read_text(encoding="utf-8"))
        assert info[config["dataset"]]["ms_hub_url"] == "swift/classical_chinese_translate"
        assert info[config["dataset"]]["formatting"] == "sharegpt" and "USE_MODELSCOPE_HUB=1" in command


def test_seed_classical_deletes_over_long_rows_like_swift_2(tmp_path):
    project = write_project(tmp_path / "p", {})
    result = run_stylewrap("render", "--preset", "seed-classical", "--set", "data.train_file=swift/classical_chinese_translate",
                           "--out", tmp_path / "out", cwd=project)
    assert result.returncode == 0, result.stderr
    config = rendered(tmp_path / "out")
    assert config["lr_scheduler_type"] == "linear" and config["truncation_strategy"] == "delete"
    assert config["max_length"] == 1024
    assert "check_dataset_strategy" in (tmp_path / "out" / "config" / "train.yaml").read_text()   # a stated difference


def lengths_data(path):
    rows = ([{"instruction": "", "input": "你好", "output": "嗨"}] * 3                       # short
            + [{"instruction": "", "input": "你看过电影吗", "output": STYLED * 3}] * 4      # 306 bytes, under 250 tokens with the prompt (the tiny model's tokenizer)
            + [{"instruction": "", "input": "讲个故事", "output": STYLED * 12}] * 2)       # ~500 tokens
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_max_tokens_drop_leaves_out_what_the_tokenizer_counts_as_longer(tmp_path, tiny_model, backend):
    project = write_project(tmp_path / "p", {
        "data": {"train_file": str(lengths_data(tmp_path / "rows.json")), "max_tokens": 250, "overlength": "drop"},
        "train": {"backend": backend, "model": str(tiny_model), "max_steps": 1}})
    result = run_stylewrap("render", "--out", tmp_path / "out", cwd=project)
    assert result.returncode == 0, result.stderr
    # by bytes, the middle rows would be over 250 too; the model's tokenizer says only the last two are
    assert f"counted with the tokenizer of {tiny_model}" in result.stderr
    assert "2 of 9 rows are longer; truncate cuts them and drops 0, drop leaves them out and trains on 7" in result.stderr
    data = next((tmp_path / "out" / "data").glob("stylewrap_style.json*"))
    text = data.read_text(encoding="utf-8")
    rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 7
    config = rendered(tmp_path / "out")
    assert config.get("cutoff_len", config.get("max_length")) == 250


def test_max_tokens_truncate_keeps_every_row(tmp_path, tiny_model):
    project = write_project(tmp_path / "p", {
        "data": {"train_file": str(lengths_data(tmp_path / "rows.json")), "max_tokens": 250},
        "train": {"backend": "swift", "model": str(tiny_model), "max_steps": 1}})
    result = run_stylewrap("render", "--out", tmp_path / "out", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "2 of 9 rows are longer" in result.stderr and "(data.overlength: truncate)" in result.stderr
    data = next((tmp_path / "out" / "data").glob("stylewrap_style.json*"))
    assert len(data.read_text(encoding="utf-8").splitlines()) == 9
    assert rendered(tmp_path / "out")["truncation_strategy"] == "right"
