"""`stylewrap run`'s export stage runs the template check `stylewrap export` runs, through the
installed console script: LLaMA-Factory trained with its `empty` template (which, unlike `default`,
does not replace the tokenizer's jinja) merges a model whose chat_template is still the tiny
model's ChatML, the drift behind LF #6020/#6320; the stage refuses it (exit 2, the export stage not
recorded as done) until `export.allow_template_mismatch` is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")


def stylewrap_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([STYLEWRAP, "run", str(project), "--quiet", "--to", "export", *args], capture_output=True,
                            text=True, timeout=900, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    print(result.stdout, result.stderr[-3000:])
    return result


def test_run_refuses_a_merged_model_whose_template_drifted(tiny_model, shared_data, tmp_path):
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(rows[:16]) + "\n", encoding="utf-8")
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl", "val_size": 0},
        "train": {"backend": "llamafactory", "model": str(tiny_model), "template": "empty", "max_steps": 2,
                  "save_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2,
                  "gradient_accumulation_steps": 1, "cutoff_len": 64, "dtype": "fp32", "dataloader_num_workers": 0},
    }))
    refused = stylewrap_run(tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "export refused" in refused.stderr and "merged differs from train" in refused.stderr
    assert "Traceback" not in refused.stderr
    stages = yaml.safe_load((tmp_path / "stylewrap.lock").read_text())["stages"]
    assert stages["train"]["status"] == "done" and stages.get("export", {}).get("status") != "done"

    # allowed: the same merged model goes through, and the stage still says what differs
    allowed = stylewrap_run(tmp_path, "--set", "export.allow_template_mismatch=true")
    assert allowed.returncode == 0, allowed.stderr
    assert "export: template check: train, merged DIFFER" in allowed.stdout
    assert "train: skipped" in allowed.stdout or "train: up to date" in allowed.stdout
