"""`train.report_to` keeps every tracker on this machine: the rendered keys and environment per
backend (SwanLab local mode, wandb offline, MLflow's file store in the run folder), the tracker
groups `backend install --with` adds (exact pins), and a tracker missing from the env refused
before training with the command that adds it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stylewrap.backends.envs import EXTRAS, extra_files, read_pins
from stylewrap.backends.presets import load_train_config
from stylewrap.backends.train import render_run

STYLEWRAP = str(Path(sys.executable).with_name("stylewrap"))
HUB_MODEL = ["train.model=Qwen/Qwen2.5-0.5B-Instruct", "train.template=qwen2_5"]


def rendered(backend: str, tracker: str, tmp_path):
    config = load_train_config(None, [*HUB_MODEL, f"train.backend={backend}", f"train.report_to={tracker}"], None)
    plan = render_run(config, tmp_path / "run", preset=None)
    return plan, yaml.safe_load((tmp_path / "run" / "config" / "train.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_wandb_runs_offline_and_mlflow_writes_into_the_run(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan, train = rendered(backend, "wandb", tmp_path / "w")
    assert train["report_to"] == "wandb"
    assert plan.invocation.env["WANDB_MODE"] == "offline"
    assert plan.invocation.env["WANDB_DIR"] == str((tmp_path / "w" / "run").resolve())
    plan, train = rendered(backend, "mlflow", tmp_path / "m")
    assert train["report_to"] == "mlflow"
    assert plan.invocation.env["MLFLOW_TRACKING_URI"] == str((tmp_path / "m" / "run").resolve() / "mlruns")
    plan, train = rendered(backend, "tensorboard", tmp_path / "t")
    assert train["report_to"] == "tensorboard" and "WANDB_MODE" not in plan.invocation.env


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_swanlab_is_local_on_both_backends(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, train = rendered(backend, "swanlab", tmp_path)
    assert train["swanlab_mode"] == "local"
    # LLaMA-Factory reaches SwanLab through its own switch, ms-swift through report_to
    assert train.get("use_swanlab") is True or train["report_to"] == "swanlab"


def test_every_tracker_group_is_exact_pins():
    for tracker in ("swanlab", "tensorboard", "wandb", "mlflow"):
        (path,) = extra_files([tracker])
        assert path.name == EXTRAS[tracker] and read_pins(path), tracker


def test_a_tracker_missing_from_the_env_is_refused_with_the_install_command(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                          '{"role": "assistant", "content": "噢，你好！"}]}\n', encoding="utf-8")
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"backend": "llamafactory", "model": "Qwen/Qwen2.5-0.5B-Instruct", "template": "qwen",
                  "report_to": "wandb"}}))
    result = subprocess.run([STYLEWRAP, "train"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "wandb is not installed in the llamafactory environment" in result.stderr
    assert "stylewrap backend install llamafactory --with wandb" in result.stderr
    assert "Traceback" not in result.stderr


def test_backend_install_offers_the_trackers():
    result = subprocess.run([STYLEWRAP, "backend", "install", "swift", "--with", "neptune"], capture_output=True, text=True)
    assert result.returncode == 2 and "'tensorboard', 'swanlab', 'wandb', 'mlflow'" in result.stderr
