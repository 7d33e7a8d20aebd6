"""The real backends (llamafactory-cli, swift) on the tiny model and 200 real TslDial rows:
train a few steps, check adapters, logs and the loss curve, merge, compare. CPU, a few minutes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from safetensors_check import tensor_names

from stylewrap.cli import cli
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration
STEPS = 4
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model, shared_data) -> Path:
    folder = tmp_path_factory.mktemp("project")
    rows = json.loads((shared_data / "tsldial" / "TslDial.json").read_text(encoding="utf-8"))[:200]
    (folder / "tsl200.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    config = {
        "data": {"train_file": "tsl200.json"},
        "train": {"model": str(tiny_model), "max_steps": STEPS, "cutoff_len": 192, "per_device_train_batch_size": 2,
                  "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 100,
                  "dataloader_num_workers": 0},
    }
    (folder / "stylewrap.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def stylewrap(project: Path, *args: str):
    import os

    cwd = os.getcwd()
    os.chdir(project)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)


def newest_run(project: Path, backend: str, method: str = "lora") -> Path:
    return sorted((project / "runs").glob(f"*-{backend}-{method}*"))[-1]


def check_trained(run_dir: Path, backend_log: str, adapter: bool = True) -> RunInfo:
    info = RunInfo.load(run_dir)
    assert info.status == "succeeded" and info.backend_version
    weights = run_dir / info.adapter_dir
    if adapter:
        assert json.loads((weights / "adapter_config.json").read_text())["peft_type"] == "LORA"
        assert any("lora_A" in name for name in tensor_names(weights / "adapter_model.safetensors"))
    else:
        assert (weights / "config.json").is_file() and (weights / "model.safetensors").is_file()
    log = [json.loads(line) for line in (run_dir / "output" / backend_log).read_text().splitlines() if line.strip()]
    assert sum(1 for record in log if "loss" in record) == STEPS
    progress = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert [p["step"] for p in progress] == list(range(1, STEPS + 1)) and all(p["loss"] > 0 for p in progress)
    assert info.metrics["steps"] == STEPS
    assert (run_dir / "loss.png").read_bytes().startswith(PNG_MAGIC)
    assert (run_dir / "config" / "command.sh").is_file() and "config/train.yaml" in info.command
    assert (run_dir / "train.log").stat().st_size > 0
    return info


def check_merged(project: Path, run_dir: Path) -> None:
    result = stylewrap(project, "export", str(run_dir))
    assert result.exit_code == 0, result.output
    merged = run_dir / "merged"
    assert json.loads((merged / "config.json").read_text())["model_type"] == "qwen2"
    assert not any("lora" in name for name in tensor_names(merged / "model.safetensors"))
    assert RunInfo.load(run_dir).merged_dir == "merged"


def check_compare(project: Path, run_dir: Path) -> None:
    result = stylewrap(project, "compare", str(run_dir), "--probes", "chatglm", "--style-prompt", "classical",
                      "--max-new-tokens", "8")
    assert result.exit_code == 0, result.output
    (report,) = (run_dir / "compare").glob("*/report.md")
    answers = report.read_text(encoding="utf-8").split("## Answers")[1]
    table = [line for line in answers.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3 and "三原色是什么?" in table[2]
    assert "<td class=\"q\">描述原子的结构。</td>" in report.with_suffix(".html").read_text(encoding="utf-8")


def test_llamafactory_lora_train_merge_compare(project):
    result = stylewrap(project, "train", "--backend", "llamafactory")
    assert result.exit_code == 0, result.output
    assert "llamafactory training" in result.output and "status: succeeded" in result.output
    run_dir = newest_run(project, "llamafactory")
    check_trained(run_dir, "trainer_log.jsonl")
    check_merged(project, run_dir)
    check_compare(project, run_dir)


def test_swift_lora_train_merge_compare(project):
    result = stylewrap(project, "train", "--backend", "swift", "--quiet")
    assert result.exit_code == 0, result.output
    run_dir = newest_run(project, "swift")
    info = check_trained(run_dir, "logging.jsonl")
    assert info.adapter_dir == f"output/checkpoint-{STEPS}"   # ms-swift keeps the adapter in the checkpoint
    check_merged(project, run_dir)
    check_compare(project, run_dir)


def test_llamafactory_full_finetune(project):
    result = stylewrap(project, "train", "--backend", "llamafactory", "--quiet", "--set", "train.method=full")
    assert result.exit_code == 0, result.output
    run_dir = newest_run(project, "llamafactory", "full")
    check_trained(run_dir, "trainer_log.jsonl", adapter=False)
    refused = stylewrap(project, "export", str(run_dir))
    assert refused.exit_code == 2 and "nothing to merge" in refused.output


def test_unknown_backend_key_is_refused_before_the_backend_starts(project):
    result = stylewrap(project, "train", "--backend", "swift", "--set", "train.extra_args={lora_rnak: 4}")
    assert result.exit_code == 2
    assert "swift train does not accept 'lora_rnak' (did you mean 'lora_rank'?)" in result.output


def test_failed_backend_run_reports_its_error_and_log(project):
    result = stylewrap(project, "train", "--backend", "llamafactory", "--quiet", "--set", "train.template=no_such_template")
    assert result.exit_code == 1
    run_dir = newest_run(project, "llamafactory")
    assert "no_such_template" in result.output and str(run_dir / "train.log") in result.output
    assert RunInfo.load(run_dir).status == "failed"
