"""The merge (export) and inference (eval/compare) configs a run directory gets, pinned per backend.
Machine paths (the run directory, this checkout) are replaced by <RUN> and <REPO> before comparing.
Regenerate after an intended change with STYLEWRAP_UPDATE_GOLDEN=1 (and review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stylewrap.backends.export import plan_export
from stylewrap.config import load_config
from stylewrap.eval.variants import plan_run_inference
from stylewrap.rundir import RunInfo

GOLDEN = Path(__file__).parent / "steps"
REPO = Path(__file__).resolve().parents[2]


def _run_dir(tmp_path: Path, backend: str) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "output").mkdir(parents=True)
    RunInfo(run_id="run", backend=backend, backend_version=None, base_model="Qwen/Qwen2.5-0.5B-Instruct", method="lora",
            template="qwen", command="", adapter_dir="output", status="succeeded",
            hyperparameters={"system": "你说话带着西式翻译腔。"}).save(run_dir)
    return run_dir


def _pinned(files: dict[str, str], run_dir: Path) -> dict[str, str]:
    return {name: text.replace(str(run_dir.resolve()), "<RUN>").replace(str(REPO), "<REPO>")
            for name, text in files.items() if name.endswith(".yaml")}


def _check(folder: Path, files: dict[str, str]) -> None:
    if os.environ.get("STYLEWRAP_UPDATE_GOLDEN"):
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    expected = {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in folder.rglob("*.yaml")}
    assert files == expected


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_merge_config_matches_golden(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = _run_dir(tmp_path, backend)
    plan = plan_export(run_dir, load_config(None, search=False))
    files = _pinned(plan.files, run_dir)
    for text in files.values():
        assert text.startswith("# Merge (export) config for ") and "# Run it from the run directory with:" in text
    _check(GOLDEN / backend / "export", files)


@pytest.mark.parametrize("backend", ["llamafactory", "swift"])
def test_inference_configs_of_eval_match_golden(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = _run_dir(tmp_path, backend)
    plan = plan_run_inference(run_dir, load_config(None, search=False), ["你去过北京吗"], run_dir / "eval" / "t",
                              style_system="你说话带着西式翻译腔。", max_new_tokens=64)
    files = {}
    for step in plan.steps:
        files.update(_pinned(step.files, run_dir))
    assert set(files) == {"config/infer_base.yaml", "config/infer_base_style.yaml", "config/infer_tuned.yaml"}
    _check(GOLDEN / backend / "infer", files)
