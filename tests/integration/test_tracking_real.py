"""`train.report_to` on a real CPU training of the tiny model (LLaMA-Factory): SwanLab in local mode
and TensorBoard write their logs in the run folder, offline, and `runs show` says where.

The shared backend env is never changed: the trackers (the pins of `backend install --with
swanlab --with tensorboard`) go into an overlay venv whose site-packages reach the managed env
through a .pth file, so pip adds only what the env lacks (and its protobuf 6 shadows the env's 7
there only); `backends.llamafactory.venv` points the run at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stylewrap.backends.envs import env_dir, extra_files, constraints_file
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration

STYLEWRAP = str(Path(sys.executable).with_name("stylewrap"))


@pytest.fixture(scope="module")
def tracker_env(tmp_path_factory) -> Path:
    backend_env = env_dir("llamafactory")
    base_python = Path(json.loads(subprocess.run(
        [str(backend_env / "bin" / "python"), "-c", "import json, sys; print(json.dumps(sys._base_executable))"],
        capture_output=True, text=True, check=True).stdout))
    overlay = tmp_path_factory.mktemp("tracker-env") / "venv"
    subprocess.run([str(base_python), "-m", "venv", str(overlay)], check=True)
    (site,) = overlay.glob("lib/python3*/site-packages")
    (backend_site,) = backend_env.glob("lib/python3*/site-packages")
    (site / "_backend_env.pth").write_text(f"{backend_site}\n")
    cli = (backend_env / "bin" / "llamafactory-cli").read_text().split("\n", 1)[1]
    (overlay / "bin" / "llamafactory-cli").write_text(f"#!{overlay / 'bin' / 'python'}\n{cli}")
    (overlay / "bin" / "llamafactory-cli").chmod(0o755)
    pins = [arg for path in extra_files(["swanlab", "tensorboard"]) for arg in ("-r", str(path))]
    subprocess.run([str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *pins, "-c", str(constraints_file(False))], check=True, timeout=900)
    return overlay


@pytest.fixture
def project(tmp_path, tiny_model, shared_data, tracker_env) -> Path:
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(rows[:16]) + "\n", encoding="utf-8")
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"backend": "llamafactory", "model": str(tiny_model), "template": "qwen", "max_steps": 3,
                  "save_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 2,
                  "gradient_accumulation_steps": 1, "cutoff_len": 64, "dtype": "fp32", "dataloader_num_workers": 0},
        "backends": {"llamafactory": {"venv": str(tracker_env)}},
    }))
    return tmp_path


def train(project: Path, tracker: str) -> Path:
    # no network and no account: anything that tried to reach a tracker's server would fail here
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run([STYLEWRAP, "train", "--quiet", "--set", f"train.report_to={tracker}"], cwd=project,
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p for p in (project / "runs").iterdir() if (p / "run.json").is_file()]
    return run_dir


def runs_show(project: Path) -> str:
    result = subprocess.run([STYLEWRAP, "runs", "show", "latest"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())


def test_swanlab_local_mode_logs_the_loss_in_the_run(project):
    run_dir = train(project, "swanlab")
    info = RunInfo.load(run_dir)
    assert info.extra["tracking"] == {"report_to": "swanlab", "logs": "swanlog"}
    (swan_run,) = (run_dir / "swanlog").glob("run-*")
    series = [[json.loads(line)["data"] for line in log.read_text().splitlines()]
              for log in swan_run.glob("logs/*/*.log")]
    # one of the logged series is the training loss the run itself recorded, step by step
    losses = [values for values in series if len(values) == 3 and values[-1] == pytest.approx(info.metrics["final_loss"], abs=1e-3)]
    assert losses, series
    assert f"tracking swanlab: {run_dir / 'swanlog'}; view: swanlab watch {run_dir / 'swanlog'}" in runs_show(project)


READ_EVENTS = """
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
accumulator = EventAccumulator(sys.argv[1])
accumulator.Reload()
print(json.dumps([event.value for event in accumulator.Scalars("train/loss")]))
"""


def test_tensorboard_event_files_hold_the_loss(project, tracker_env):
    run_dir = train(project, "tensorboard")
    info = RunInfo.load(run_dir)
    logs = run_dir / info.extra["tracking"]["logs"]
    (events,) = {path.parent for path in logs.rglob("events.out.tfevents.*")}
    # read back with TensorBoard's own reader (in the tracker env: stylewrap does not install it)
    loss = json.loads(subprocess.run([str(tracker_env / "bin" / "python"), "-c", READ_EVENTS, str(events)],
                                     capture_output=True, text=True, check=True).stdout)
    assert len(loss) == 3 and loss[-1] == pytest.approx(info.metrics["final_loss"], abs=1e-3)
    assert f"tracking tensorboard: {logs}; view: tensorboard --logdir {logs}" in runs_show(project)
