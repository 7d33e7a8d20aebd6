"""The sbatch script `stylewrap train --launcher slurm` writes, pinned for both backends and the
seed's ZeRO-2 run spread over 2 nodes x 8 GPUs (docs/cluster.md's worked example). Regenerate after
an intended change with STYLEWRAP_UPDATE_GOLDEN=1 pytest tests/golden/test_sbatch_scripts.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stylewrap.backends.base import get_backend
from stylewrap.backends.slurm import plan_job, sbatch_script
from stylewrap.backends.train import TrainRequest

GOLDEN = Path(__file__).parent / "sbatch"
HUB_MODEL = ["train.model=Qwen/Qwen2.5-0.5B-Instruct", "train.template=qwen2_5", "train.gpu_memory_gib=80"]
TWO_BY_EIGHT = {"nodes": 2, "gpus_per_node": 8, "partition": "gpu", "time": "1-00:00:00", "account": "style"}

CASES = {
    "llamafactory-2x8": (["train.backend=llamafactory", *HUB_MODEL, "train.deepspeed=zero2"], None, TWO_BY_EIGHT),
    "swift-2x8": (["train.backend=swift", *HUB_MODEL, "train.deepspeed=zero2"], None, TWO_BY_EIGHT),
    "seed-translational-2x8": (["train.model=Qwen/Qwen1.5-7B-Chat"], "seed-translational", TWO_BY_EIGHT),
    "swift-cpu-1x2": (["train.backend=swift", *HUB_MODEL[:2], "train.nproc_per_node=2", "slurm.cpus_per_task=2"],
                      None, {"nodes": 1, "gpus_per_node": 0}),
}


def machine_free(text: str, run_dir: Path, backend: str) -> str:
    """This machine's paths replaced by placeholders: the run folder, the backend env, the time."""
    env = get_backend(backend).env_dir
    text = text.replace(str(run_dir.resolve()), "/shared/project/runs/RUN").replace(run_dir.name, "RUN")
    return text.replace(str(env), f"/shared/stylewrap/envs/{backend}") if env else text


@pytest.mark.parametrize("name", sorted(CASES))
def test_sbatch_script_matches_golden(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides, preset, cluster = CASES[name]
    plan = plan_job(TrainRequest(overrides=tuple(overrides), preset=preset, launcher="slurm", cluster=cluster))
    script = machine_free(sbatch_script(plan), plan.run_dir, plan.backend.name)
    golden = GOLDEN / f"{name}.sh"
    if os.environ.get("STYLEWRAP_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(script, encoding="utf-8")
    assert script == golden.read_text(encoding="utf-8")
