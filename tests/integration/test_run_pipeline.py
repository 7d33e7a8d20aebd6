"""`stylewrap run` end to end, through the installed console script: datagen against a local
scripted OpenAI-compatible server, the real LLaMA-Factory env training the tiny model, a real
merge, compare, a real server, and a publish to a local fake ModelScope hub.

The tests run in file order on one project, each starting from the state the one before left
(as a user's successive `stylewrap run`s do).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from fakehub import FakeHub
from fakekeys import modelscope_token
from fakeopenai import FakeServer, free_port
from stylewrap.pipeline.fingerprint import stream_digest
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration

STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")
PIPELINE_STAGES = ("datagen", "data", "train", "export", "eval", "deploy")
TOKEN = modelscope_token(51)
STEPS = 4
KILL_STEPS, KILL_SAVE = 40, 4


@pytest.fixture(scope="module")
def teacher():
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model, teacher):
    folder = tmp_path_factory.mktemp("pipeline")
    port = free_port()
    (folder / "stylewrap.yaml").write_text(yaml.safe_dump({
        "style": {"preset": "translational"},
        "datagen": {"base_url": teacher.base_url, "teacher_model": "teacher-1", "num_topics": 4, "num_dialogues": 12,
                    "concurrency": 4, "request_timeout": 5, "output_dir": "data/generated"},
        "train": {"backend": "llamafactory", "model": str(tiny_model), "template": "qwen", "max_steps": STEPS,
                  "save_steps": STEPS, "logging_steps": 1, "per_device_train_batch_size": 2,
                  "gradient_accumulation_steps": 1, "cutoff_len": 96, "dtype": "fp32", "learning_rate": 1e-3,
                  "dataloader_num_workers": 0},
        "eval": {"probes": "translational", "max_new_tokens": 24},
        "deploy": {"port": port, "startup_timeout": 240},
    }, allow_unicode=True))
    yield folder
    lock = yaml.safe_load((folder / "stylewrap.lock").read_text()) if (folder / "stylewrap.lock").is_file() else {}
    pid = lock.get("stages", {}).get("deploy", {}).get("outputs", {}).get("pid")
    if pid:
        subprocess.run([STYLEWRAP, "deploy", "stop", "--port", str(port)], capture_output=True, timeout=60)


def env(**extra) -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "test-key", "CUDA_VISIBLE_DEVICES": "", **extra}


def stylewrap_run(project: Path, *args: str, **extra_env) -> subprocess.CompletedProcess:
    result = subprocess.run([STYLEWRAP, "run", str(project), "--quiet", *args], capture_output=True, text=True,
                            timeout=900, env=env(**extra_env))
    print(result.stdout, result.stderr[-3000:])
    return result


def stage_lines(result: subprocess.CompletedProcess) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(": ")
        lines.setdefault(name, []).append(rest)
    return lines


def lock(project: Path) -> dict:
    return yaml.safe_load((project / "stylewrap.lock").read_text())["stages"]


def run_dirs(project: Path) -> list[Path]:
    return sorted(p for p in (project / "runs").iterdir() if p.is_dir())


def models_served(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as response:
        return [model["id"] for model in json.loads(response.read())["data"]]


def test_full_pass_runs_every_configured_stage(project, teacher):
    result = stylewrap_run(project)
    assert result.returncode == 0, result.stderr
    lines = stage_lines(result)
    for stage in PIPELINE_STAGES:
        assert lines[stage][0].startswith("running ("), (stage, lines[stage])
        assert lines[stage][-1].startswith("done in "), (stage, lines[stage])
    assert lines["publish"] == ["off (no publish section)"]
    assert "12 rows generated" in lines["datagen"][-1]
    assert teacher.log(), "datagen sent nothing to the teacher"
    (run_dir,) = run_dirs(project)
    info = RunInfo.load(run_dir)
    assert info.status == "succeeded" and info.metrics["steps"] == STEPS and info.merged_dir
    assert (run_dir / info.merged_dir / "config.json").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    ran = [(s, "ran") for s in PIPELINE_STAGES]
    assert [(s["name"], s["action"]) for s in summary["stages"]] == [*ran[:3], ("prefer", "off"), *ran[3:], ("publish", "off")]
    assert "final loss" in (run_dir / "summary.md").read_text()
    assert models_served(lock(project)["deploy"]["outputs"]["port"])


def test_second_pass_skips_every_stage(project, teacher):
    teacher.clear_log()
    before = run_dirs(project)
    result = stylewrap_run(project)
    assert result.returncode == 0, result.stderr
    lines = stage_lines(result)
    for stage in PIPELINE_STAGES:
        assert lines[stage] == [lines[stage][0]] and lines[stage][0].startswith("up to date ("), (stage, lines[stage])
    assert lines["train"] == ["up to date (train/style config, base model, data unchanged)"]
    assert teacher.log() == [] and run_dirs(project) == before


def test_adding_a_publish_section_runs_only_publish(project, tmp_path):
    from modelscope_hub.config import set_default_config

    hub = FakeHub(token=TOKEN, username="alice").start()
    try:
        config = yaml.safe_load((project / "stylewrap.yaml").read_text())
        config["publish"] = {"model_repo": "alice/translational-tiny", "max_retries": 1}
        (project / "stylewrap.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        hub_env = {"MODELSCOPE_API_TOKEN": TOKEN, "MODELSCOPE_ENDPOINT": hub.url,
                   "MODELSCOPE_HOME": str(tmp_path / "ms-home"), "MODELSCOPE_CACHE": str(tmp_path / "ms-cache")}
        result = stylewrap_run(project, **hub_env)
        assert result.returncode == 0, result.stderr
        lines = stage_lines(result)
        assert all(lines[stage][0].startswith("up to date") for stage in PIPELINE_STAGES), lines
        assert lines["publish"][0] == "running (never ran)"
        assert lines["publish"][-1].startswith("done in ") and "alice/translational-tiny" in lines["publish"][-1]
        assert hub.repo("model", "alice/translational-tiny").files
        again = stylewrap_run(project, **hub_env)
        assert all(lines[0].startswith("up to date") for name, lines in stage_lines(again).items() if name in (*PIPELINE_STAGES, "publish"))
    finally:
        del config["publish"]
        (project / "stylewrap.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        hub.stop()
        set_default_config(None)
    assert hub.unexpected == []


def test_editing_the_data_file_reruns_from_data(project):
    data = project / "data" / "generated" / "train.jsonl"
    rows = data.read_text(encoding="utf-8").splitlines()
    os.utime(data)  # a touch alone changes no byte: still up to date
    assert "data: up to date" in stylewrap_run(project, "--dry-run").stdout
    data.write_text("\n".join(rows[:-1]) + "\n", encoding="utf-8")
    result = stylewrap_run(project)
    assert result.returncode == 0, result.stderr
    lines = stage_lines(result)
    assert lines["datagen"][0].startswith("up to date")
    assert lines["data"][0] == "running (changed: data file)"
    assert lines["data"][-1].startswith(f"done in ") and f"{len(rows) - 1} rows" in lines["data"][-1]
    for stage in ("train", "export", "eval", "deploy"):
        assert lines[stage][0] == "running (after data)", (stage, lines[stage])
    assert len(run_dirs(project)) == 2


def test_changing_the_learning_rate_reruns_from_train(project):
    config = yaml.safe_load((project / "stylewrap.yaml").read_text())
    config["train"]["learning_rate"] = 2e-3
    (project / "stylewrap.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    result = stylewrap_run(project, "--to", "train")
    assert result.returncode == 0, result.stderr
    lines = stage_lines(result)
    assert [lines["datagen"][0][:10], lines["data"][0][:10]] == ["up to date", "up to date"]
    assert lines["train"][0] == "running (changed: train.learning_rate)"
    assert lines["export"] == ["not run (after --to train)"]
    assert RunInfo.load(run_dirs(project)[-1]).hyperparameters["learning_rate"] == 2e-3


def test_dry_run_changes_nothing_on_disk(project):
    def tree() -> dict:
        return {str(p.relative_to(project)): (p.stat().st_mtime_ns, stream_digest(p)) if p.is_file() else "dir"
                for p in project.rglob("*")}

    before = tree()
    result = stylewrap_run(project, "--dry-run", "--force", "data")
    assert result.returncode == 0
    assert stage_lines(result)["data"] == ["will run (--force)"]
    assert stage_lines(result)["train"] == ["will run (after data)"]
    assert tree() == before


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_kill_9_during_training_then_rerun_resumes_from_the_checkpoint(project):
    args = ["--to", "train", "--set", f"train.max_steps={KILL_STEPS}", "--set", f"train.save_steps={KILL_SAVE}"]
    process = subprocess.Popen([STYLEWRAP, "run", str(project), "--quiet", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env())
    try:
        deadline = time.monotonic() + 600
        checkpoint = None
        while checkpoint is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            # the first stage writes the lock file: when this test runs alone it is not there yet
            record = lock(project).get("train", {}) if (project / "stylewrap.lock").is_file() else {}
            run_dir = record.get("outputs", {}).get("run_dir") if record.get("status") == "running" else None
            if run_dir:
                states = sorted((project / run_dir / "output").glob(f"checkpoint-{2 * KILL_SAVE}/trainer_state.json"))
                checkpoint = states[0].parent if states else None
        assert checkpoint is not None, "no checkpoint appeared while training"
        # a crash: the trainer (its own process group) and stylewrap die without a word
        for child in _children(process.pid):
            os.killpg(child, signal.SIGKILL)
        process.kill()
    finally:
        process.wait(timeout=60)
        process.stdout.close()
    run_dir = checkpoint.parents[1]
    assert lock(project)["train"]["status"] == "running"
    assert RunInfo.load(run_dir).status == "running"
    killed_at = max(int(p.name.split("-")[1]) for p in (run_dir / "output").glob("checkpoint-*")
                    if (p / "trainer_state.json").is_file())
    assert killed_at < KILL_STEPS

    result = stylewrap_run(project, *args)
    assert result.returncode == 0, result.stderr
    lines = stage_lines(result)
    assert lines["train"][0].startswith("running (resuming: it was running at")
    assert f"resuming {run_dir.relative_to(project)} from output/checkpoint-{killed_at}" in lines["train"]
    info = RunInfo.load(run_dir)
    assert info.status == "succeeded" and info.extra["resumed_from"] == f"output/checkpoint-{killed_at}"
    # the backend's own step log of the resumed process starts after the checkpoint, not at step 1
    resumed = [json.loads(line)["current_steps"] for line in (run_dir / "output" / "trainer_log.jsonl").read_text().splitlines()]
    assert resumed[0] == killed_at + 1 and resumed[-1] == KILL_STEPS
    steps = [json.loads(line)["step"] for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == KILL_STEPS and 1 not in steps[steps.index(killed_at + 1):]
    assert info.metrics["steps"] == KILL_STEPS
