"""Naming a run: every command that takes one accepts the id `runs list` prints, a unique prefix,
`latest` or a folder; `runs list` fits 80 columns, `runs show` reads as lines, `--json` for scripts.
Through the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylewrap.rundir import RunInfo

STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")
OLD, NEW = "20261130-091500-swift-lora", "20261201-101500-llamafactory-lora"


def make_run(project: Path, run_id: str, created_at: str, backend: str) -> Path:
    run_dir = project / "runs" / run_id
    (run_dir / "output").mkdir(parents=True)
    (run_dir / "output" / "adapter_config.json").write_text("{}")
    RunInfo(run_id=run_id, backend=backend, backend_version="1.0", base_model="/very/long/path/to/models/Qwen2.5-0.5B-Instruct",
            method="lora", template="qwen", command="cd x && PATH=/env/bin:/usr/local/bin:/usr/bin:/bin swift sft config/train.yaml",
            adapter_dir="output", status="succeeded", created_at=created_at, metrics={"steps": 120, "final_loss": 1.23456},
            hyperparameters={"learning_rate": 1e-4}, dataset={"name": "style", "rows": 300}).save(run_dir)
    return run_dir


@pytest.fixture
def project(tmp_path):
    (tmp_path / "stylewrap.yaml").write_text("train:\n  output_dir: runs\n", encoding="utf-8")
    make_run(tmp_path, OLD, "2026-11-30T09:15:00+00:00", "swift")
    make_run(tmp_path, NEW, "2026-12-01T10:15:00+00:00", "llamafactory")
    return tmp_path


def stylewrap(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([STYLEWRAP, *args], cwd=project, capture_output=True, text=True, env=env, timeout=120)


def test_runs_list_fits_80_columns_with_whole_ids(project):
    result = stylewrap(project, "runs", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    ids = [line.split()[0] for line in lines if line.startswith("2026")]
    assert ids == [NEW, OLD], result.stdout   # whole, newest first
    assert "1.2346" in result.stdout and "Qwen2.5-0.5B" in result.stdout and "/very/long" not in result.stdout
    assert f"next: stylewrap runs show {NEW}" in result.stdout


def test_runs_show_is_lines_to_read_with_the_path_once(project):
    result = stylewrap(project, "runs", "show", "2026113")
    assert result.returncode == 0, result.stderr
    assert not result.stdout.lstrip().startswith("{")
    assert f"run         {OLD}  (succeeded)" in result.stdout
    assert result.stdout.count(str((project / "runs" / OLD).resolve())) == 1
    assert result.stdout.count("PATH=") == 1 and "/usr/local/bin" not in result.stdout
    assert "result      120 steps, final loss 1.2346" in result.stdout


def test_json_for_scripts(project):
    listed = json.loads(stylewrap(project, "runs", "list", "--json").stdout)
    assert [run["run_id"] for run in listed] == [NEW, OLD]
    shown = json.loads(stylewrap(project, "runs", "show", "latest", "--json").stdout)
    assert shown["run_id"] == NEW and shown["run_dir"] == str((project / "runs" / NEW).resolve())


@pytest.mark.parametrize("name, expected", [(NEW, NEW), ("20261201", NEW), ("latest", NEW), (f"runs/{OLD}", OLD)])
@pytest.mark.parametrize("command", [["export", "{}", "--dry-run"], ["compare", "{}", "--dry-run"],
                                     ["eval", "{}", "--dry-run"], ["deploy", "--run", "{}", "--dry-run"]])
def test_every_run_taking_command_accepts_the_id_a_prefix_latest_or_a_folder(project, command, name, expected):
    result = stylewrap(project, *[part.format(name) for part in command])
    if command[0] == "eval" and "stylewrap[eval]" in result.stderr:
        pytest.skip("the eval extra is not installed")
    assert result.returncode == 0, result.stderr
    assert f"runs/{expected}" in result.stdout or str(project / "runs" / expected) in result.stdout, result.stdout


@pytest.mark.parametrize("name, message", [("2026", "'2026' names 2 runs"), ("nope", "no run 'nope' under")])
def test_an_ambiguous_or_unknown_run_is_one_line_exit_2(project, name, message):
    for args in (["runs", "show", name], ["export", name, "--dry-run"], ["deploy", "--run", name, "--dry-run"]):
        result = stylewrap(project, *args)
        assert result.returncode == 2, (args, result.stderr)
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert message in error and "Traceback" not in result.stderr
