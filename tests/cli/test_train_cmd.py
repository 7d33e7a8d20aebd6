"""`stylewrap train/render/export/compare` build the right argv and env (runner patched: the one
place a patch is fine; the real backends run in tests/integration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stylewrap import runner
from stylewrap.backends.trainlog import LOSS_CURVE_SCRIPT
from stylewrap.cli import cli
from stylewrap.rundir import RunInfo

ROWS = 20


@pytest.fixture
def project(tmp_path, monkeypatch, shared_data):
    """A project with 20 real TslDial rows and fake backend programs; no backend env anywhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STYLEWRAP_ENVS_DIR", str(tmp_path / "no-envs"))
    rows = json.loads((shared_data / "tsldial" / "TslDial.json").read_text(encoding="utf-8"))[:ROWS]
    (tmp_path / "train.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    for program in ("llamafactory-cli", "swift"):
        # started by this python, as pip's console scripts are by their env's: the loss curve is
        # drawn with it (it has matplotlib, as both backend envs do)
        (fake_bin / program).write_text(f"#!{sys.executable}\nraise SystemExit(0)\n")
    config = {
        "data": {"train_file": "train.json"},
        "train": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "template": "qwen2_5", "max_steps": 3},
        "backends": {"llamafactory": {"executable": str(fake_bin / "llamafactory-cli")},
                     "swift": {"executable": str(fake_bin / "swift")}},
    }
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


class FakeBackend:
    """Stands in for runner.run: records each Invocation and leaves what the backend would."""

    def __init__(self, returncode=0, tail=(), weights="output", log_records=None):
        # the loss curve (stylewrap's own script, in the backend env's python) is still drawn for real
        self.real_run = runner.run
        self.calls: list[runner.Invocation] = []
        self.returncode, self.tail, self.weights = returncode, list(tail), weights
        self.log_records = log_records

    def __call__(self, inv, *, log_file=None, on_line=None, **kwargs):
        if str(LOSS_CURVE_SCRIPT) in inv.argv:
            return self.real_run(inv, log_file=log_file, on_line=on_line, **kwargs)
        self.calls.append(inv)
        cwd = Path(inv.cwd)
        log_name = "logging.jsonl" if inv.argv[1] == "sft" else "trainer_log.jsonl"
        records = self.log_records if self.log_records is not None else (
            [{"loss": 2.0 - i / 10, "learning_rate": 1e-4, "global_step/max_steps": f"{i}/3", "remaining_time": "1s"}
             for i in (1, 2, 3)] if log_name == "logging.jsonl" else
            [{"current_steps": i, "total_steps": 3, "loss": 2.0 - i / 10, "lr": 1e-4, "remaining_time": "0:00:01"}
             for i in (1, 2, 3)])
        (cwd / "output").mkdir(parents=True, exist_ok=True)
        (cwd / "output" / log_name).write_text("".join(json.dumps(r) + "\n" for r in records))
        if self.weights:
            (cwd / self.weights).mkdir(parents=True, exist_ok=True)
            (cwd / self.weights / "adapter_config.json").write_text("{}")
        if on_line:
            on_line("step")
        if log_file:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text("\n".join(self.tail))
        return runner.RunResult(returncode=self.returncode, tail=self.tail, log_file=log_file)


def invoke(*args):
    return CliRunner().invoke(cli, [*args], catch_exceptions=False)


def only_run(project) -> Path:
    (run_dir,) = [p for p in (project / "runs").iterdir() if p.is_dir()]
    return run_dir


def train_yaml(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config" / "train.yaml").read_text(encoding="utf-8"))


def test_llamafactory_single_process(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    result = invoke("train", "--backend", "llamafactory", "--quiet")
    assert result.exit_code == 0, result.output
    (inv,) = fake.calls
    run_dir = only_run(project)
    assert inv.argv == [str(project / "fake-bin" / "llamafactory-cli"), "train", "config/train.yaml"]
    assert inv.cwd == run_dir
    assert inv.env["PATH"].startswith(str(project / "fake-bin"))
    assert "FORCE_TORCHRUN" not in inv.env and "NPROC_PER_NODE" not in inv.env
    config = train_yaml(run_dir)
    assert config["model_name_or_path"] == "Qwen/Qwen2.5-0.5B-Instruct" and config["template"] == "qwen"
    assert config["dataset"] == "stylewrap_style" and config["dataset_dir"] == "data"
    assert config["max_steps"] == 3 and config["output_dir"] == "output"
    info_path = json.loads((run_dir / "data" / "dataset_info.json").read_text(encoding="utf-8"))
    assert "stylewrap_style" in info_path
    info = RunInfo.load(run_dir)
    assert info.status == "succeeded" and info.adapter_dir == "output"
    assert info.metrics["steps"] == 3 and info.metrics["final_loss"] == pytest.approx(1.7)
    assert info.metrics["backend_seconds"] >= 0 and info.loss_png == "loss.png"
    assert info.dataset["rows"] == ROWS
    assert [json.loads(l)["step"] for l in (run_dir / "progress.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert "run:" in result.output and "status: succeeded" in result.output


def test_llamafactory_multi_gpu_forces_torchrun(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    assert invoke("train", "--backend", "llamafactory", "--nproc-per-node", "2", "--quiet").exit_code == 0
    env = fake.calls[0].env
    assert (env["FORCE_TORCHRUN"], env["NPROC_PER_NODE"], env["NNODES"], env["NODE_RANK"]) == ("1", "2", "1", "0")
    header = (only_run(project) / "config" / "train.yaml").read_text().splitlines()[2]
    assert header == "#   NPROC_PER_NODE=2 NNODES=1 NODE_RANK=0 FORCE_TORCHRUN=1 llamafactory-cli train config/train.yaml"


def test_swift_multi_node(project, monkeypatch):
    fake = FakeBackend(weights="output/checkpoint-3")
    monkeypatch.setattr(runner, "run", fake)
    result = invoke("train", "--backend", "swift", "--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1",
                    "--master-addr", "10.1.1.1", "--master-port", "29501", "--quiet")
    assert result.exit_code == 0, result.output
    inv = fake.calls[0]
    assert inv.argv == [str(project / "fake-bin" / "swift"), "sft", "config/train.yaml"]
    assert {k: inv.env[k] for k in ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")} == {
        "NPROC_PER_NODE": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.1.1.1", "MASTER_PORT": "29501"}
    assert "FORCE_TORCHRUN" not in inv.env
    run_dir = only_run(project)
    config = train_yaml(run_dir)
    # ms-swift traps: explicit gradient accumulation, no hub check, no versioned output folder
    assert config["gradient_accumulation_steps"] == 4
    assert config["check_model"] is False and config["add_version"] is False
    assert config["max_length"] == 1024 and config["target_modules"] == ["all-linear"]
    registration = json.loads((run_dir / config["custom_dataset_info"]).read_text(encoding="utf-8"))
    assert registration[0]["dataset_name"] == "stylewrap_style"
    # node rank 1 trains, but the trainer writes the weights on rank 0: its checkpoint folder (its
    # ranks' RNG states) is no adapter, and its folder is named apart from rank 0's
    info = RunInfo.load(run_dir)
    assert info.adapter_dir is None and info.status == "succeeded" and run_dir.name.endswith("-swift-lora-node1")
    assert "weights: written by node rank 0" in result.output


def test_swift_versioned_output_folder_is_found(project, monkeypatch):
    monkeypatch.setattr(runner, "run", FakeBackend(weights="output/v0-20260101-000000/checkpoint-3"))
    assert invoke("train", "--backend", "swift", "--quiet").exit_code == 0
    assert RunInfo.load(only_run(project)).adapter_dir == "output/v0-20260101-000000/checkpoint-3"


def test_swift_local_model_gets_model_type_and_template(project, monkeypatch):
    model = project / "local-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    fake = FakeBackend(weights="output/checkpoint-3")
    monkeypatch.setattr(runner, "run", fake)
    assert invoke("train", "--backend", "swift", "--quiet", "--set", f"train.model={model}",
                  "--set", "train.template=null").exit_code == 0
    config = train_yaml(only_run(project))
    assert (config["model"], config["model_type"], config["template"]) == (str(model), "qwen2", "qwen")


def test_style_system_prompt_replaces_the_template_default(project, monkeypatch):
    monkeypatch.setattr(runner, "run", FakeBackend())
    assert invoke("train", "--backend", "llamafactory", "--quiet", "--set", "style.system_prompt=说话带翻译腔").exit_code == 0
    assert train_yaml(only_run(project))["default_system"] == "说话带翻译腔"


@pytest.mark.parametrize("choice, stage", [("zero2", 2), ("zero3", 3), ("zero3_offload", 3)])
def test_deepspeed_presets(project, monkeypatch, choice, stage):
    monkeypatch.setattr(runner, "run", FakeBackend())
    # ZeRO shards across processes: on one it is left out (tests/cli/test_seed_train.py)
    assert invoke("train", "--backend", "llamafactory", "--deepspeed", choice, "--nproc-per-node", "2", "--quiet").exit_code == 0
    run_dir = only_run(project)
    assert train_yaml(run_dir)["deepspeed"] == f"config/ds_{choice}.json"
    assert json.loads((run_dir / "config" / f"ds_{choice}.json").read_text())["zero_optimization"]["stage"] == stage


def test_deepspeed_json_file_is_copied_into_the_run(project, monkeypatch, shared_data):
    monkeypatch.setattr(runner, "run", FakeBackend())
    seed = shared_data / "tsldial" / "seed_deepspeed.json"
    assert invoke("train", "--backend", "swift", "--deepspeed", str(seed), "--nproc-per-node", "2", "--quiet").exit_code == 0
    run_dir = only_run(project)
    assert train_yaml(run_dir)["deepspeed"] == "config/ds_custom.json"
    assert (run_dir / "config" / "ds_custom.json").read_bytes() == seed.read_bytes()


def test_bad_deepspeed_path_is_input_error(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    result = CliRunner().invoke(cli, ["train", "--deepspeed", "nope.json"])
    assert result.exit_code == 2 and "DeepSpeed config not found" in result.output
    assert fake.calls == []


def test_dry_run_prints_and_writes_nothing(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    result = invoke("train", "--backend", "swift", "--dry-run", "--nproc-per-node", "2", "--set", "train.learning_rate=3e-5")
    assert result.exit_code == 0
    assert fake.calls == [] and not (project / "runs").exists()
    assert "swift sft config/train.yaml" in result.output and "NPROC_PER_NODE=2" in result.output
    assert "learning_rate: 3.0e-05" in result.output and "--- config/train.yaml" in result.output


def test_failed_backend_reports_its_last_error_lines_and_log(project, monkeypatch):
    tail = ["loading...", "Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: boom"]
    monkeypatch.setattr(runner, "run", FakeBackend(returncode=1, tail=tail, weights=None, log_records=[]))
    result = CliRunner().invoke(cli, ["train", "--backend", "llamafactory", "--quiet"])
    assert result.exit_code == 1
    run_dir = only_run(project)
    assert "ValueError: boom" in result.output and str(run_dir / "train.log") in result.output
    assert "loading..." not in result.output
    assert RunInfo.load(run_dir).status == "failed"


def test_empty_dataset_is_refused_before_the_backend_starts(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    (project / "train.json").write_text("[]")
    result = CliRunner().invoke(cli, ["train", "--backend", "swift"])
    assert result.exit_code == 2 and "train.json: the file has no rows" in result.output
    # with the format given there is nothing to detect from; stylewrap still refuses
    result = CliRunner().invoke(cli, ["train", "--backend", "swift", "--set", "data.format=alpaca"])
    assert result.exit_code == 2 and "none of the 0 rows has an assistant answer" in result.output
    assert fake.calls == [] and not any((project / "runs").glob("*"))


def test_dataset_with_only_invalid_rows_is_refused_with_file_line_field(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    (project / "train.json").write_text(json.dumps([{"instruction": "hi", "input": "", "output": ""}] * 3))
    result = CliRunner().invoke(cli, ["train", "--backend", "swift"])
    assert result.exit_code == 2 and "train.json:1: output" in result.output
    assert fake.calls == [] and not any((project / "runs").glob("*"))


def test_resume_continues_the_unfinished_run(project, monkeypatch):
    monkeypatch.setattr(runner, "run", FakeBackend(returncode=1, weights="output/checkpoint-2", tail=["RuntimeError: OOM"]))
    assert CliRunner().invoke(cli, ["train", "--backend", "llamafactory", "--quiet"]).exit_code == 1
    first = only_run(project)
    (first / "output" / "checkpoint-2" / "adapter_config.json").unlink()
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    assert invoke("train", "--backend", "llamafactory", "--resume", "--quiet").exit_code == 0
    assert only_run(project) == first and fake.calls[0].cwd == first
    assert train_yaml(first)["resume_from_checkpoint"] == "output/checkpoint-2"


def test_resume_without_a_checkpoint_is_input_error(project):
    result = CliRunner().invoke(cli, ["train", "--resume"])
    assert result.exit_code == 2 and "no unfinished run" in result.output


def test_missing_model_is_input_error(project):
    result = CliRunner().invoke(cli, ["train", "--set", "train.model=null", "--dry-run"])
    assert result.exit_code == 2 and "train.model: no base model" in result.output


def test_render_writes_configs_only(project, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(runner, "run", fake)
    result = invoke("render", "--preset", "seed-classical", "--out", "rendered")
    assert result.exit_code == 0 and fake.calls == []
    assert sorted(p.name for p in (project / "rendered" / "config").iterdir()) == ["command.sh", "train.yaml"]


def test_runs_list_and_show(project, monkeypatch):
    monkeypatch.setattr(runner, "run", FakeBackend())
    invoke("train", "--backend", "llamafactory", "--quiet")
    run_dir = only_run(project)
    listing = invoke("runs", "list")
    assert run_dir.name in listing.output and "succeeded" in listing.output
    shown = json.loads(invoke("runs", "show", run_dir.name, "--json").stdout)
    assert shown["run_id"] == run_dir.name and shown["adapter_dir"] == "output"


def _fake_run(project, method="lora", base_model="Qwen/Qwen2.5-0.5B-Instruct", backend="swift") -> Path:
    run_dir = project / "runs" / f"r-{backend}-{method}"
    (run_dir / "output").mkdir(parents=True)
    (run_dir / "output" / "adapter_config.json").write_text("{}")
    RunInfo(run_id=run_dir.name, backend=backend, backend_version=None, base_model=base_model, method=method,
            template="qwen", command="", adapter_dir="output", status="succeeded").save(run_dir)
    return run_dir


@pytest.mark.parametrize("backend, subcommand, merged_key", [("swift", ["export"], "merge_lora"),
                                                             ("llamafactory", ["export"], "export_dir")])
def test_export_invocation(project, monkeypatch, backend, subcommand, merged_key):
    run_dir = _fake_run(project, backend=backend)
    result = invoke("export", str(run_dir), "--dry-run")
    assert result.exit_code == 0, result.output
    assert f" {' '.join(subcommand)} config/export.yaml" in result.output and merged_key in result.output
    assert not (run_dir / "config" / "export.yaml").exists()


def test_export_refuses_full_runs_and_quantized_bases(project):
    assert "nothing to merge" in CliRunner().invoke(cli, ["export", str(_fake_run(project, method="full"))]).output
    quantized = project / "quantized-model"
    quantized.mkdir()
    (quantized / "config.json").write_text(json.dumps({"model_type": "qwen2", "quantization_config": {"bits": 4}}))
    result = CliRunner().invoke(cli, ["export", str(_fake_run(project, base_model=str(quantized), backend="llamafactory"))])
    assert result.exit_code == 2 and "base model is quantized" in result.output


def test_compare_plans_base_with_style_prompt_and_tuned(project):
    run_dir = _fake_run(project)
    result = invoke("compare", str(run_dir), "--style-prompt", "classical", "--probes", "classical", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count("#   swift infer config/infer_") == 3
    assert "树上有十只鸟，用枪打死一只，还剩多少只？" in result.output
    head, tuned_part = result.output.split("[tuned]")
    base_part, styled_part = head.split("[base+style]")
    assert "古文翻译腔" in styled_part and "古文翻译腔" not in base_part + tuned_part
    assert "adapters:" in tuned_part and "adapters:" not in base_part + styled_part


@pytest.mark.parametrize("style, asked, not_asked", [("translational", "你去过北京吗", "树上有十只鸟"),
                                                     ("classical", "树上有十只鸟", "你去过北京吗")])
def test_compare_asks_the_probes_of_the_projects_style(project, style, asked, not_asked):
    result = invoke("compare", str(_fake_run(project)), "--set", f"style.preset={style}", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"probes: {style} (" in result.output and asked in result.output and not_asked not in result.output


def test_quantized_export_without_a_gpu_is_refused(project):
    # conftest hides every GPU (CUDA_VISIBLE_DEVICES=""), as a machine without one
    result = CliRunner().invoke(cli, ["export", str(_fake_run(project)), "--quantization-bit", "4", "--dry-run"])
    assert result.exit_code == 2 and "quantized export calibrates on a CUDA GPU" in result.output


@pytest.mark.parametrize("backend, expected", [
    ("swift", {"quant_method": "gptq", "quant_bits": 4, "dataset": ["/run/data/rows.jsonl"]}),
    ("llamafactory", {"export_quantization_bit": 4, "export_quantization_dataset": "/run/data/rows.jsonl"}),
])
def test_quantized_export_calibrates_on_the_run_data(backend, expected):
    from stylewrap.backends.base import get_backend

    sections = get_backend(backend).sections("export", {"quantization_bit": 4, "calibration_data": "/run/data/rows.jsonl"})
    assert {k: v for k, v in sections["export"].items() if k in expected} == expected


def test_a_secret_never_reaches_the_run_directory(project, monkeypatch):
    planted = "ms-planted-token-0123456789"
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", planted)
    monkeypatch.setattr(runner, "run", FakeBackend(weights="output/checkpoint-3"))
    result = invoke("train", "--backend", "swift", "--quiet", "--set", f"train.extra_args={{hub_token: {planted}}}")
    assert result.exit_code == 0, result.output
    run_dir = only_run(project)
    assert "hub_token: ***" in (run_dir / "config" / "train.yaml").read_text()
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert planted not in path.read_text(encoding="utf-8", errors="replace"), path


def test_compare_a_full_finetune_uses_its_weights_as_the_tuned_model(project):
    run_dir = _fake_run(project, method="full", backend="llamafactory")
    result = invoke("compare", str(run_dir), "--probes", "translational", "--dry-run")
    assert result.exit_code == 0, result.output
    base_part, tuned_part = result.output.split("[tuned]")
    assert "model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct" in base_part.split("[base+style]")[0]
    assert f"model_name_or_path: {(run_dir / 'output').resolve()}" in tuned_part
    assert "adapter_name_or_path" not in result.output and "你去过北京吗" in result.output


@pytest.mark.parametrize("backend, eval_key, expected", [("llamafactory", "eval_dataset", "stylewrap_style_val"),
                                                          ("swift", "val_dataset", ["stylewrap_style_val"])])
def test_validation_file_is_registered_and_evaluated(project, monkeypatch, shared_data, backend, eval_key, expected):
    rows = json.loads((shared_data / "tsldial" / "TslDial.json").read_text(encoding="utf-8"))[ROWS:ROWS + 5]
    (project / "val.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(runner, "run", FakeBackend(weights="output/checkpoint-3"))
    result = invoke("train", "--backend", backend, "--quiet", "--set", "data.val_file=val.json",
                    "--set", "data.val_size=0.1")
    assert result.exit_code == 0, result.output
    run_dir = only_run(project)
    config = train_yaml(run_dir)
    assert config[eval_key] == expected and config["eval_strategy"] == "steps"
    assert "val_size" not in config and "split_dataset_ratio" not in config
    assert RunInfo.load(run_dir).dataset["validation"]["rows"] == 5
    registered = (run_dir / "data").glob("*info.json")
    assert any("stylewrap_style_val" in path.read_text() for path in registered)


def test_swift_packing_without_flash_attention_is_refused_before_anything_runs(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from stylewrap.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["render", "--out", str(tmp_path / "run"), "--backend", "swift",
                                      "--set", "train.model=Qwen/Qwen2.5-7B-Instruct", "--set", "train.template=qwen", "--set", "train.packing=true",
                                      "--set", "train.attention=sdpa"])
    assert result.exit_code == 2, result.output
    assert "train.packing: swift needs train.attention=flash_attn" in result.output
    assert not (tmp_path / "run").exists()


FAKE_SWIFT = """#!/bin/sh
# a stand-in `swift` on PATH: leaves the log and adapter `swift sft` would, in its cwd (the run)
mkdir -p output/checkpoint-3
for step in 1 2 3; do
  echo "{\\"loss\\": 1.5, \\"learning_rate\\": 0.0001, \\"global_step/max_steps\\": \\"$step/3\\", \\"remaining_time\\": \\"1s\\"}" >> output/logging.jsonl
done
echo '{}' > output/checkpoint-3/adapter_config.json
echo "ran: $*" > ran.txt
"""


def test_a_bare_executable_name_on_path_is_found_by_train_and_doctor_alike(project):
    """`backends.swift.executable: swift` (a name, as a shell would run it): doctor found it on PATH
    while train said the backend was not installed; both now look it up the same way."""
    own_bin = project / "own-bin"
    own_bin.mkdir()
    (own_bin / "swift").write_text(FAKE_SWIFT)
    (own_bin / "swift").chmod(0o755)
    config = yaml.safe_load((project / "stylewrap.yaml").read_text(encoding="utf-8"))
    config["backends"]["swift"] = {"executable": "swift"}
    (project / "stylewrap.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "PATH": f"{own_bin}{os.pathsep}{os.environ['PATH']}"}
    stylewrap = str(Path(sys.executable).with_name("stylewrap"))

    doctor = subprocess.run([stylewrap, "backend", "doctor", "swift"], cwd=project, env=env, capture_output=True, text=True)
    assert f"executable: {own_bin / 'swift'}" in doctor.stdout and "not found" not in doctor.stdout

    train = subprocess.run([stylewrap, "train", "--backend", "swift", "--quiet"], cwd=project, env=env,
                           capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    run_dir = only_run(project)
    assert (run_dir / "ran.txt").read_text().startswith("ran: sft config/train.yaml")
    assert RunInfo.load(run_dir).status == "succeeded"
