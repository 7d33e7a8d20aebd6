"""`stylewrap run` decides from file *content*: the data stage alone (real validate, dedup, convert,
register; no training), through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stylewrap.cli import cli
from stylewrap.pipeline import fingerprint

STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")


def write_rows(path: Path, count: int, *, answer: str = "答") -> None:
    rows = [{"问": f"问题{n}？", "答": f"{answer}{n}。"} for n in range(count)]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


@pytest.fixture
def project(tmp_path) -> Path:
    write_rows(tmp_path / "rows.jsonl", 12)
    (tmp_path / "rows.jsonl").write_text((tmp_path / "rows.jsonl").read_text(encoding="utf-8") * 2, encoding="utf-8")
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "rows.jsonl", "val_size": 0.25},
        "train": {"backend": "llamafactory", "model": "unused-model"},
    }))
    return tmp_path


def stylewrap(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STYLEWRAP, "run", str(project / "stylewrap.yaml"), "--quiet", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


def edit_in_place(path: Path) -> None:
    """Change one character: same size, so only the content tells the files apart."""
    size = path.stat().st_size
    path.write_text(path.read_text(encoding="utf-8").replace("答3。", "答9。", 1), encoding="utf-8")
    assert path.stat().st_size == size


def tree_state(folder: Path) -> dict[str, tuple]:
    """Every file's size, mtime and content digest, and every folder: what a dry run must not change."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, fingerprint.stream_digest(p))
            if p.is_file() else "dir" for p in folder.rglob("*")}


def test_data_stage_prepares_and_a_second_run_skips_it(project):
    first = stylewrap(project, "--to", "data")
    assert first.returncode == 0, first.stderr
    assert "data: done" in first.stdout and "12 duplicates dropped" in first.stdout
    prepared = project / "data" / "prepared"
    train = [json.loads(line) for line in (prepared / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    val = (prepared / "val.jsonl").read_text(encoding="utf-8").splitlines()
    assert (len(train), len(val)) == (9, 3)
    assert set(train[0]) == {"conversations"}                       # llamafactory's sharegpt rows
    assert "stylewrap_style" in json.loads((prepared / "dataset_info.json").read_text())
    lock = yaml.safe_load((project / "stylewrap.lock").read_text())
    assert lock["stages"]["data"]["status"] == "done"

    second = stylewrap(project, "--to", "data")
    assert second.returncode == 0
    assert "data: up to date (config, data file unchanged)" in second.stdout


def test_touch_alone_skips_and_an_edit_of_the_same_size_reruns(project):
    assert stylewrap(project, "--to", "data").returncode == 0
    data = project / "rows.jsonl"
    os.utime(data)  # `touch`: new mtime, same bytes
    touched = stylewrap(project, "--to", "data", "--dry-run")
    assert "data: up to date" in touched.stdout
    edit_in_place(data)
    edited = stylewrap(project, "--to", "data", "--dry-run")
    assert "data: will run (changed: data file)" in edited.stdout


def test_negative_control_a_fingerprint_blind_to_content_would_skip_the_edit(project, monkeypatch):
    """The edit test above fails when fingerprints ignore content (as a path-based cache does)."""
    monkeypatch.chdir(project)
    monkeypatch.setattr(fingerprint.HashCache, "file_digest", lambda self, path: str(Path(path).name))
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--to", "data", "--quiet"]).exit_code == 0
    edit_in_place(project / "rows.jsonl")
    blind = runner.invoke(cli, ["run", "--to", "data", "--dry-run"])
    assert "data: up to date" in blind.output and "will run" not in blind.output


def test_dry_run_writes_nothing(project):
    before = tree_state(project)
    result = stylewrap(project, "--dry-run")
    assert result.returncode == 0
    assert "data: will run (never ran)" in result.stdout and "dry run: nothing ran" in result.stdout
    assert tree_state(project) == before


def test_bad_rows_fail_with_exit_2_and_the_command_that_resumes(project):
    with (project / "rows.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"问": "只有问题"}\n')
    result = stylewrap(project, "--to", "data", "--set", "data.dataset_name=mine")
    assert result.returncode == 2
    assert "data: failed" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"resume with: stylewrap run {project / 'stylewrap.yaml'} --set data.dataset_name=mine --to data"
    assert "Traceback" not in result.stderr
    assert yaml.safe_load((project / "stylewrap.lock").read_text())["stages"]["data"]["status"] == "failed"


def test_bad_input_before_any_stage_is_one_line_exit_2(project):
    result = stylewrap(project, "--set", "train.method=lorra")
    assert result.returncode == 2
    # besides the `config: PATH` notice every command gives (issue 12, H3), one line
    errors = [line for line in result.stderr.strip().splitlines() if not line.startswith("config: ")]
    assert len(errors) == 1 and errors[0].startswith("Error:")
    assert "--set train.method=lorra: train.method" in errors[0] and "Traceback" not in result.stderr
    assert not (project / "stylewrap.lock").exists()
    unknown = stylewrap(project, "--from", "eval", "--to", "data")
    assert unknown.returncode == 2 and "--from eval comes after --to data" in unknown.stderr


def test_a_second_run_on_the_same_project_is_refused(project):
    import fcntl

    state = project / ".stylewrap"
    state.mkdir()
    with open(state / "run.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)   # as a run in progress holds it
        result = stylewrap(project, "--to", "data")
    assert result.returncode == 2 and "another `stylewrap run` is running on this project" in result.stderr
    assert not (project / "stylewrap.lock").exists()
    assert stylewrap(project, "--to", "data").returncode == 0


def test_a_secret_in_a_config_value_never_reaches_the_lock(project):
    from fakekeys import openai_key

    key = openai_key(7)
    result = subprocess.run([STYLEWRAP, "run", str(project), "--quiet", "--to", "data", "--set", f"data.dataset_name=x{key}"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "OPENAI_API_KEY": key})
    assert result.returncode == 0, result.stderr
    lock = (project / "stylewrap.lock").read_text()
    assert key not in lock and "dataset_name: x***" in lock


def test_the_reason_names_a_setting_that_appeared_or_changed():
    from stylewrap.pipeline.runner import what_changed

    before = {"config": {"style": {"preset": "translational"}}, "files": {"data file": "a"}, "versions": {"swift": "4.0"}}
    now = {"config": {"style": {"preset": "translational", "persona": None}}, "files": {"data file": "b"},
           "upstream": {}, "versions": {"swift": "4.1"}}
    assert what_changed(before, now) == ["style.persona", "data file", "swift 4.0 -> 4.1"]
