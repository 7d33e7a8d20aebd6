from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stylewrap.cli import cli


@pytest.fixture(scope="session")
def swift_run(tiny_model, shared_data, tmp_path_factory) -> Path:
    """A real `stylewrap train` run (ms-swift LoRA, 3 steps on the tiny model), trained once per
    session and shared: publish uploads it, deploy serves it. Session-scoped, so it is trained
    before any function-scoped fake hub is up and the backend never sees MODELSCOPE_ENDPOINT."""
    project = tmp_path_factory.mktemp("swift-project")
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()
    (project / "train.jsonl").write_text("\n".join(rows[:32]) + "\n", encoding="utf-8")
    (project / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"backend": "swift", "model": str(tiny_model), "template": "qwen", "max_steps": 3, "save_steps": 3,
                  "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                  "cutoff_len": 128, "dtype": "fp32"},
    }))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        trained = CliRunner().invoke(cli, ["train", "--quiet"], catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    (run_dir,) = (project / "runs").iterdir()
    return run_dir
