"""Two "nodes" on 127.0.0.1: two `stylewrap train --nnodes 2 --node-rank 0|1` processes (the
installed console script) train the tiny model together on the CPU, over gloo, on each backend.
The run must be one run: both ranks finish, the adapter is written once (node rank 0), one optimizer
step takes the configured global batch (2 rows x 2 nodes), and the loss curve is the one a single
node with two processes draws on the same data and seed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from console import STYLEWRAP, environment
from steplog import rows_per_step

from stylewrap.rundir import RunInfo
from ports import free_port

pytestmark = pytest.mark.integration
STEPS = 6
ROWS = 48
PER_DEVICE = 2
GLOBAL_BATCH = PER_DEVICE * 2          # x 2 processes (2 nodes x 1, or 1 node x 2)
ADAPTER = "adapter_model.safetensors"


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model, shared_data) -> Path:
    folder = tmp_path_factory.mktemp("multinode")
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()[:ROWS]
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"model": str(tiny_model), "template": "qwen", "max_steps": STEPS, "cutoff_len": 64, "dtype": "fp32",
                  "per_device_train_batch_size": PER_DEVICE, "gradient_accumulation_steps": 1, "learning_rate": 1e-3,
                  "logging_steps": 1, "save_steps": 100, "dataloader_num_workers": 0, "seed": 42},
    }), encoding="utf-8")
    return folder


def train(project: Path, backend: str, *launch: str) -> subprocess.Popen:
    return subprocess.Popen([str(STYLEWRAP), "train", "--backend", backend, "--quiet", *launch], cwd=project,
                            env=environment(None), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return proc.returncode, output


def run_folder(output: str) -> Path:
    (line,) = [line for line in output.splitlines() if line.startswith("run: ")]
    return Path(line[len("run: "):])


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "progress.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_two_nodes_train_one_run(project, backend):
    port = str(free_port())
    nodes = [train(project, backend, "--nnodes", "2", "--node-rank", str(rank), "--master-addr", "127.0.0.1",
                   "--master-port", port) for rank in (0, 1)]
    (code0, out0), (code1, out1) = finished(nodes[0]), finished(nodes[1])
    assert code0 == 0, out0
    assert code1 == 0, out1
    main, worker = run_folder(out0), run_folder(out1)
    assert worker.name.endswith(f"-{backend}-lora-node1")
    assert "weights: written by node rank 0" in out1

    # one adapter, on node rank 0; node rank 1 finished without claiming any
    adapters = sorted(path for folder in (main, worker) for path in folder.rglob(ADAPTER))
    info, worker_info = RunInfo.load(main), RunInfo.load(worker)
    assert adapters and all(main in path.parents for path in adapters), adapters
    assert (main / info.adapter_dir / ADAPTER).is_file() and info.status == "succeeded"
    assert worker_info.status == "succeeded" and worker_info.adapter_dir is None
    assert worker_info.extra["launch"]["node_rank"] == 1 and worker_info.extra["launch"]["nnodes"] == 2
    # the trainer ran as one world of two: each rank kept its RNG state under its global rank
    # (a process that trains alone writes rng_state.pth, and its own adapter)
    assert {path.name for path in main.rglob("rng_state*.pth")} == {"rng_state_0.pth"}
    assert {path.name for path in worker.rglob("rng_state*.pth")} == {"rng_state_1.pth"}

    # one optimizer step takes GLOBAL_BATCH rows: the epoch the trainer logs after each step is the
    # share of the ROWS rows trained so far (two nodes training alone, each on every row, show half)
    assert rows_per_step(main, ROWS) == pytest.approx([GLOBAL_BATCH] * STEPS, rel=1e-3)

    # the same run as one node with two processes: the same losses, step by step
    single = train(project, backend, "--nproc-per-node", "2", "--master-port", str(free_port()))
    code, out = finished(single)
    assert code == 0, out
    one_node = run_folder(out)
    assert len(losses(main)) == STEPS
    assert losses(main) == pytest.approx(losses(one_node), rel=1e-4)
