"""`--checkpoint N|best|last` wherever a run is used: the seed's author picked checkpoint-200 by
hand, the SWIFT tutorial names best_model_checkpoint. Through the console script (dry runs)."""

from __future__ import annotations

import json
import shutil

import pytest

from console import run_stylewrap
from fakekeys import modelscope_token
from runfixture import LORA_TENSORS, make_run_dir, write_safetensors

from stylewrap.errors import InputError
from stylewrap.rundir import load_run

EVAL_LOSS = {10: 1.5, 20: 1.2, 30: 1.4}   # the best is not the last


@pytest.fixture
def run_dir(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    run = make_run_dir(tmp_path, base_model=base, planted_secret=modelscope_token(7))
    history = [{"step": step, "eval_loss": loss} for step, loss in EVAL_LOSS.items()]
    for step in EVAL_LOSS:
        checkpoint = run / "output" / f"checkpoint-{step}"
        write_safetensors(checkpoint / "adapter_model.safetensors", LORA_TENSORS, seed=step)
        shutil.copy(run / "output" / "adapter_config.json", checkpoint / "adapter_config.json")
        seen = [entry for entry in history if entry["step"] <= step]
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": seen}))
    return run


def test_each_choice_resolves_to_its_weights(run_dir):
    assert load_run(run_dir).adapter_dir == "output"
    assert load_run(run_dir, "last").adapter_dir == "output"
    assert load_run(run_dir, "20").adapter_dir == "output/checkpoint-20"
    assert load_run(run_dir, "best").adapter_dir == "output/checkpoint-20"
    with pytest.raises(InputError, match=r"no checkpoint-200 in this run \(kept: 10, 20, 30\)"):
        load_run(run_dir, "200")
    with pytest.raises(InputError, match="expected a step number, best or last"):
        load_run(run_dir, "newest")


def test_best_needs_evaluations(run_dir):
    for step in EVAL_LOSS:
        (run_dir / "output" / f"checkpoint-{step}" / "trainer_state.json").write_text('{"log_history": [{"loss": 2.0}]}')
    with pytest.raises(InputError, match="no kept checkpoint has an eval loss"):
        load_run(run_dir, "best")


def test_export_merges_the_chosen_checkpoint_and_run_json_keeps_the_final_weights(run_dir, tmp_path):
    result = run_stylewrap("export", run_dir, "--checkpoint", "best", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "output/checkpoint-20" in result.stdout
    assert json.loads((run_dir / "run.json").read_text())["adapter_dir"] == "output"
    missing = run_stylewrap("export", run_dir, "--checkpoint", "200", "--dry-run", cwd=tmp_path)
    assert missing.returncode == 2 and "no checkpoint-200 in this run (kept: 10, 20, 30)" in missing.stderr
    assert "save_total_limit" in missing.stderr and "Traceback" not in missing.stderr


def test_deploy_serves_the_chosen_checkpoint(run_dir, tmp_path):
    result = run_stylewrap("deploy", "--run", run_dir, "--checkpoint", "10", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(run_dir / "output" / "checkpoint-10") in result.stdout


@pytest.mark.parametrize("command", ["compare", "eval"])
def test_compare_and_eval_answer_with_the_chosen_checkpoint(run_dir, tmp_path, command):
    result = run_stylewrap(command, run_dir, "--checkpoint", "30", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str((run_dir / "output" / "checkpoint-30").resolve()) in result.stdout
    assert str((run_dir / "output").resolve()) + "\n" not in result.stdout
