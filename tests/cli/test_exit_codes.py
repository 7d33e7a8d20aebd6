"""Every top-level command's exit status through the installed console script: 2 for bad input the
user can fix, 1 for a run that failed, 0 when it worked. CliRunner never runs `main()`, which is
where an exit code was once dropped (`data validate` reported problems and exited 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import run_stylewrap
from fakeopenai import FakeServer

BAD_YAML = "train:\n  learning_rate: [1\n"


def sharegpt_rows(path: Path, *, broken: bool) -> Path:
    second = "human" if broken else "gpt"  # two user turns in a row break the alternation
    row = {"conversations": [{"from": "human", "value": "你好"}, {"from": second, "value": "噢，亲爱的朋友！"}]}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def plain_rows(path: Path) -> Path:
    path.write_text(json.dumps({"问": "周末做什么？", "答": "去公园跑步。"}, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def project(tmp_path: Path, yaml_text: str = "") -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".git").mkdir()  # a project root: the config search stops here
    if yaml_text:
        (folder / "stylewrap.yaml").write_text(yaml_text, encoding="utf-8")
    return folder


# (id, args, expected exit code); `{project}`-relative files are made by `prepare`
CASES = [
    ("init-ok", ["init"], 0),
    ("config-bad-yaml", ["config", "validate", "--config", "bad.yaml"], 2),
    ("config-ok", ["config", "validate"], 0),
    ("config-bad-set", ["config", "show", "--set", "train.num_train_epochs=-1"], 2),
    ("styles-unknown", ["styles", "show", "no-such-style"], 2),
    ("styles-ok", ["styles", "list"], 0),
    ("data-row-problem", ["data", "validate", "broken.jsonl"], 2),
    ("data-ok", ["data", "validate", "good.jsonl"], 0),
    ("backend-unknown", ["backend", "doctor", "no-such-backend"], 2),
    ("backend-missing-env", ["backend", "doctor", "swift", "--set", "backends.envs_dir=no-envs"], 1),
    ("render-no-model", ["render", "--out", "rendered"], 2),
    ("train-no-model", ["train", "--quiet"], 2),
    ("runs-unknown", ["runs", "show", "no-such-run"], 2),
    ("runs-ok", ["runs", "list"], 0),
    ("export-not-a-run", ["export", "good.jsonl"], 2),
    ("compare-not-a-run", ["compare", "good.jsonl"], 2),
    ("publish-missing", ["publish", "model", "no-such-dir"], 2),
    ("deploy-no-server", ["deploy", "stop", "--port", "1"], 2),
    ("deploy-ok", ["deploy", "status"], 0),
    ("chat-bad-temperature", ["chat", "--temperature", "5"], 2),
    ("app-bad-port", ["app", "--port", "99999"], 2),
    ("webui-unknown-backend", ["webui", "--backend", "no-such-backend"], 2),
    ("eval-nothing", ["eval"], 2),
    ("demo-unknown-backend", ["demo", "--backend", "no-such-backend"], 2),
    ("datagen-bad-flag", ["datagen", "stylize", "--concurrency", "0", "-i", "plain.jsonl"], 2),
    ("eval-nothing-to-measure", ["eval"], 2),
    ("run-no-data", ["run", "--to", "data"], 2),
    ("run-bad-rows", ["run", "--to", "data", "--set", "data.train_file=broken.jsonl"], 2),
    ("run-data-ok", ["run", "--to", "data", "--set", "data.train_file=good.jsonl"], 0),
    ("run-bad-set", ["run", "--set", "train.method=lorra"], 2),
    ("run-unknown-stage", ["run", "--to", "no-such-stage"], 2),
    ("train-nodes-without-master", ["train", "--nnodes", "2"], 2),
    ("train-rank-past-nodes", ["train", "--nnodes", "2", "--node-rank", "2", "--master-addr", "10.0.0.1"], 2),
    ("train-slurm-resume", ["train", "--launcher", "slurm", "--resume", "--dry-run"], 2),
]


@pytest.mark.parametrize("args, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_exit_code_through_the_console_script(tmp_path, args, expected):
    folder = project(tmp_path, "train:\n  backend: swift\n")
    (folder / "bad.yaml").write_text(BAD_YAML, encoding="utf-8")
    sharegpt_rows(folder / "broken.jsonl", broken=True)
    sharegpt_rows(folder / "good.jsonl", broken=False)
    plain_rows(folder / "plain.jsonl")
    if args == ["init"]:
        (folder / "stylewrap.yaml").unlink()
    done = run_stylewrap(*args, cwd=folder, env={"HOME": str(tmp_path)})
    assert done.returncode == expected, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_init_refuses_to_overwrite_with_exit_2(tmp_path):
    folder = project(tmp_path, "style:\n  preset: classical\n")
    done = run_stylewrap("init", cwd=folder, env={"HOME": str(tmp_path)})
    assert done.returncode == 2 and "already exists" in done.stderr
    assert (folder / "stylewrap.yaml").read_text(encoding="utf-8") == "style:\n  preset: classical\n"


def test_every_top_level_command_has_an_exit_code_case():
    from stylewrap.cli import COMMANDS

    covered = {case[1][0] for case in CASES}
    assert covered == set(COMMANDS)


# ------------------------------------------------------------------ datagen: the run's outcome


@pytest.fixture(scope="module")
def teacher():
    server = FakeServer()
    yield server
    server.stop()


def datagen_stylize(teacher: FakeServer, folder: Path, output: str):
    return run_stylewrap("datagen", "stylize", "-i", plain_rows(folder / "plain.jsonl"), "-o", output,
                         "--base-url", teacher.base_url, "--model", "teacher-1", "--timeout", "2",
                         "--max-retries", "0", "--max-attempts", "1", "--quiet", cwd=folder,
                         env={"HOME": str(folder), "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": None})


def test_datagen_exits_1_while_retryable_items_remain_and_0_once_done(teacher, tmp_path):
    folder = project(tmp_path)
    teacher.script(faults=["500"])
    failed = datagen_stylize(teacher, folder, "out")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    [error] = [json.loads(line) for line in (folder / "out" / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert error["final"] is False
    teacher.script()
    resumed = datagen_stylize(teacher, folder, "out")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
