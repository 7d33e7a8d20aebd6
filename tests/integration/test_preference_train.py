"""Preference tuning with the real backends on the tiny model, on pairs built from the seed's own
styled and plain files: DPO on top of an SFT run, ORPO from the base, KTO from unpaired rows; then
export and compare on the result like any run. CPU, a few steps each."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from safetensors_check import float32_tensors, tensor_names

from console import run_stylewrap
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration
STEPS = 3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BACKEND_LOG = {"llamafactory": "trainer_log.jsonl", "swift": "logging.jsonl"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model, shared_data) -> Path:
    folder = tmp_path_factory.mktemp("prefs")
    seed = shared_data / "tsldial"
    (folder / "styled.jsonl").write_text("".join(seed.joinpath("3_TranslationalDialogues.jsonl").open(encoding="utf-8")
                                                 .readlines()[:48]), encoding="utf-8")
    (folder / "plain.jsonl").write_text("".join(seed.joinpath("2_Dialogues.jsonl").open(encoding="utf-8")
                                                .readlines()[:48]), encoding="utf-8")
    (folder / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "styled.jsonl", "pairs_file": "pairs.jsonl"},
        "train": {"model": str(tiny_model), "template": "qwen", "max_steps": STEPS, "cutoff_len": 128,
                  "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 1e-3,
                  "logging_steps": 1, "save_steps": 100, "dataloader_num_workers": 0, "dtype": "fp32"},
    }), encoding="utf-8")
    made = run_stylewrap("data", "pairs", "--chosen", "styled.jsonl", "--rejected", "plain.jsonl", cwd=folder)
    assert made.returncode == 0, made.stderr
    return folder


def train(project: Path, *args: str) -> Path:
    before = set((project / "runs").glob("*")) if (project / "runs").exists() else set()
    result = run_stylewrap("train", "--quiet", *args, cwd=project, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = set((project / "runs").glob("*")) - before
    assert f"next: stylewrap compare {RunInfo.load(run_dir).run_id} --open" in result.stdout, result.stdout
    return run_dir


def lora_tensors(weights: Path) -> dict[str, list[float]]:
    return {name: value for name, value in float32_tensors(weights / "adapter_model.safetensors").items() if "lora_B" in name}


def distance(a: dict[str, list[float]], b: dict[str, list[float]] | None = None) -> float:
    """Euclidean norm of a - b (of a alone when b is None), over all tensors."""
    return sum((x - (b[name][i] if b else 0.0)) ** 2 for name, values in a.items() for i, x in enumerate(values)) ** 0.5


def check_preference_run(run_dir: Path, objective: str) -> RunInfo:
    """Adapter written, a finite loss logged every step, the reward margins logged and in run.json."""
    info = RunInfo.load(run_dir)
    assert info.status == "succeeded" and info.extra["preference"]["objective"] == objective
    weights = run_dir / info.adapter_dir
    assert json.loads((weights / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert any("lora_A" in name for name in tensor_names(weights / "adapter_model.safetensors"))
    progress = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert [p["step"] for p in progress] == list(range(1, STEPS + 1))
    assert all(math.isfinite(p["loss"]) for p in progress)
    (state,) = sorted((run_dir / "output").rglob("trainer_state.json"), key=lambda p: p.stat().st_mtime)[-1:]
    logged = [e for e in json.loads(state.read_text())["log_history"] if "loss" in e and "epoch" in e and "train_loss" not in e]
    assert len(logged) == STEPS and all(math.isfinite(e["loss"]) for e in logged)
    # KTO logs a side's rewards only for batches holding rows of that side; the pairwise losses log all
    assert all(any(math.isfinite(e.get(f"rewards/{side}", math.nan)) for side in ("chosen", "rejected")) for e in logged)
    margins = [e["rewards/margins"] for e in logged if "rewards/margins" in e]
    assert margins and all(math.isfinite(m) for m in margins) and (len(margins) == STEPS or objective == "kto")
    assert info.metrics["final_rewards_margins"] == margins[-1]
    assert (run_dir / "loss.png").read_bytes().startswith(PNG_MAGIC)
    return info


@pytest.fixture(scope="module")
def sft_runs(project) -> dict[str, Path]:
    return {backend: train(project, "--backend", backend) for backend in ("llamafactory", "swift")}


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_dpo_on_top_of_an_sft_run(project, sft_runs, backend):
    sft = sft_runs[backend]
    # a learning rate 100x lower than SFT's: DPO moves the adapter by ~1% of what SFT's steps did
    run_dir = train(project, "--backend", backend, "--method", "dpo", "--from-run", str(sft), "--set", "train.learning_rate=1e-5")
    info = check_preference_run(run_dir, "dpo")
    sft_info = RunInfo.load(sft)
    # the SFT model is the reference: at the first step policy and reference agree, the DPO loss is
    # -log(sigmoid(0)) = ln 2 and the margin 0 (with the base as reference they differ already)
    progress = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert progress[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert info.metrics["first_rewards_margins"] == pytest.approx(0.0, abs=1e-4)
    # the SFT adapter trained on: the DPO adapter is the SFT one moved a little, not a fresh one (which
    # would be as far from it as the SFT adapter is from zero)
    before, after = lora_tensors(sft / sft_info.adapter_dir), lora_tensors(run_dir / info.adapter_dir)
    assert before.keys() == after.keys()
    moved, size = distance(after, before), distance(before)
    assert size > 0 and moved < 0.1 * size
    assert info.base_model == sft_info.base_model and info.method == "lora"
    merged = run_stylewrap("export", run_dir, cwd=project, timeout=600)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.rstrip().splitlines()[-2:] == [f"next: stylewrap deploy --run {run_dir.name} --detach",
                                                        f"  or: stylewrap publish model {run_dir.name} --merged"]
    assert not any("lora" in name for name in tensor_names(run_dir / "merged" / "model.safetensors"))


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_orpo_from_the_base_model(project, backend):
    run_dir = train(project, "--backend", backend, "--method", "orpo")
    info = check_preference_run(run_dir, "orpo")
    assert "adapter" not in info.extra["preference"] and info.extra["preference"]["from_run"] is None
    compared = run_stylewrap("compare", run_dir, "--probes", "chatglm", "--max-new-tokens", "8", cwd=project, timeout=600)
    assert compared.returncode == 0, compared.stderr
    assert f"next: stylewrap deploy --run {run_dir.name} --detach" in compared.stdout, compared.stdout
    assert list((run_dir / "compare").glob("*/report.md"))


def test_kto_learns_from_the_pairs_split_into_desirable_and_undesirable_rows(project):
    # 4 rows a batch: a batch of only desirable (or only undesirable) rows logs no margin
    run_dir = train(project, "--backend", "swift", "--method", "kto", "--set", "train.per_device_train_batch_size=4")
    info = check_preference_run(run_dir, "kto")
    rows = [json.loads(line) for line in (run_dir / "data" / "stylewrap_style_unpaired.jsonl").read_text().splitlines()]
    assert info.dataset["pairs"] * 2 == len(rows) == info.dataset["rows"]
    assert [row["label"] for row in rows[:4]] == [True, False, True, False]
    assert rows[0]["messages"][:-1] == rows[1]["messages"][:-1]


def test_bad_preference_settings_are_refused_before_the_backend_starts(project):
    result = run_stylewrap("train", "--method", "orpo", "--set", "train.preference.loss_type=hinge", cwd=project)
    assert result.returncode == 2 and "train.preference.loss_type: loss_type 'hinge' is a DPO loss" in result.stderr
    sft_rows = run_stylewrap("train", "--method", "dpo", "--set", "data.pairs_file=styled.jsonl", cwd=project)
    assert sft_rows.returncode == 2 and "styled.jsonl:1: not a preference pair" in sft_rows.stderr


def test_run_chains_sft_then_dpo_and_exports_the_dpo_run(project, tmp_path):
    """`train.then: dpo`: `stylewrap run` trains SFT, then DPO from it; later stages use the DPO run."""
    config = yaml.safe_load((project / "stylewrap.yaml").read_text(encoding="utf-8"))
    config["train"]["then"] = "dpo"
    for name in ("styled.jsonl", "pairs.jsonl"):
        (tmp_path / name).write_text((project / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run_stylewrap("run", tmp_path / "stylewrap.yaml", "--quiet", "--to", "export", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    stages = yaml.safe_load((tmp_path / "stylewrap.lock").read_text())["stages"]
    sft, dpo = (tmp_path / stages[name]["outputs"]["run_dir"] for name in ("train", "prefer"))
    info = RunInfo.load(dpo)
    assert info.extra["preference"]["objective"] == "dpo" and Path(info.extra["preference"]["from_run"]) == sft.resolve()
    assert (tmp_path / stages["export"]["outputs"]["merged_dir"]).resolve() == (dpo / "merged").resolve()
