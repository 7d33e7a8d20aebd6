"""`stylewrap eval` on real models: a run directory through each backend's batch inference
(base, base+style, tuned), and a real `stylewrap deploy` server of the tiny model as an endpoint,
mixed with a run in one report. The tiny model is random, so the tests check what the report must
hold whatever it says: every variant, every probe, every metric with its interval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fakekeys import openai_key
from stylewrap.serve import servers as server
from stylewrap.cli import cli
from stylewrap.config import PublishConfig
from stylewrap.publish.plan import plan_model
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration

STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")
REQUIRED = ("marker_rate", "p_style", "chrf_masked", "correct", "distinct2", "repetition", "length")
KEY_ENV = "STYLEWRAP_TEST_EVAL_KEY"
KEY = openai_key(47)


@pytest.fixture(scope="module")
def style_pairs(shared_data, tmp_path_factory) -> Path:
    folder = shared_data / "tsldial"
    styled = {json.loads(line)["问"]: json.loads(line)["答"]
              for line in (folder / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()[:400]}
    out = tmp_path_factory.mktemp("style") / "pairs.jsonl"
    rows = [json.loads(line) for line in (folder / "2_Dialogues.jsonl").read_text(encoding="utf-8").splitlines()[:400]]
    out.write_text("".join(json.dumps({"plain": r["答"], "styled": styled[r["问"]]}, ensure_ascii=False) + "\n"
                           for r in rows if r["问"] in styled), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def llamafactory_run(tiny_model, shared_data, tmp_path_factory) -> Path:
    """A real LLaMA-Factory LoRA run (3 steps on the tiny model)."""
    project = tmp_path_factory.mktemp("lf-project")
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()
    (project / "train.jsonl").write_text("\n".join(rows[:32]) + "\n", encoding="utf-8")
    (project / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"backend": "llamafactory", "model": str(tiny_model), "template": "qwen", "max_steps": 3,
                  "save_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 2,
                  "gradient_accumulation_steps": 1, "cutoff_len": 128, "dataloader_num_workers": 0},
    }))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        trained = CliRunner().invoke(cli, ["train", "--quiet"], catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def check_report(out: Path, variants: set[str], probes: int) -> dict:
    result = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert result["probes"] == probes and set(result["variants"]) == variants
    for name, values in result["variants"].items():
        for metric in REQUIRED:
            assert values[metric]["low"] <= values[metric]["mean"] <= values[metric]["high"], (name, metric)
    for row in result["rows"]:
        assert set(row["variants"]) == variants
        assert all(isinstance(detail["answer"], str) for detail in row["variants"].values())
    html = (out / "report.html").read_text(encoding="utf-8")
    assert all(f'<td class="q">{row["question"]}' in html for row in result["rows"])
    assert (out / "metrics.png").read_bytes().startswith(b"\x89PNG")
    return result


@pytest.mark.parametrize("run_fixture", ["llamafactory_run", "swift_run"])
def test_eval_of_a_run_directory_through_its_backend(request, run_fixture, style_pairs, tmp_path):
    run_dir = request.getfixturevalue(run_fixture)
    out = tmp_path / "report"
    done = subprocess.run([STYLEWRAP, "eval", str(run_dir), "--probes", "classical", "--style-data", str(style_pairs),
                           "--max-new-tokens", "12", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = check_report(out, {"base", "base+style", "tuned"}, 5)
    assert result["run"]["backend"] == RunInfo.load(run_dir).backend
    assert result["variant_info"]["base+style"]["system"] and not result["variant_info"]["base"]["system"]
    for row in result["rows"]:   # the reference against itself: all kept, unless it said nothing
        base = row["variants"]["base"]
        assert base["chrf_masked"] == pytest.approx(1.0 if base["answer"].strip() else 0.0)
        assert ("empty" in base["flags"]) == (not base["answer"].strip())
    assert str(out / "report.md") in RunInfo.load(run_dir).compare_reports
    # `publish model` of the run puts the eval table in the model card
    card = plan_model(run_dir, "alice/styled", PublishConfig(base_model_id="Qwen/Qwen2-0.5B-Instruct"),
                      variant="adapter").file("README.md").content.decode()
    evaluation = card.split("## Evaluation", 1)[1].split("\n## ", 1)[0]
    assert "| Metric | base | base+style | tuned |" in evaluation
    marker_rate = result["variants"]["tuned"]["marker_rate"]
    row = next(line for line in evaluation.splitlines() if line.startswith("| answers with a marker"))
    assert row.rstrip(" |").split(" | ")[-1].startswith(f"{100 * marker_rate['mean']:.0f}% [")
    assert str(tmp_path) not in card


def test_compare_is_the_same_report_under_the_run(llamafactory_run):
    done = subprocess.run([STYLEWRAP, "compare", str(llamafactory_run), "--probes", "chatglm", "--max-new-tokens", "8"],
                          capture_output=True, text=True, timeout=900, cwd=llamafactory_run)
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = (llamafactory_run / "compare").iterdir()
    result = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
    assert [row["question"] for row in result["rows"]] == ["保持健康的三个提示。", "三原色是什么?", "描述原子的结构。"]
    assert set(result["variant_info"]) == {"base", "base+style", "tuned"}
    assert "marker_rate" in result["variants"]["tuned"]        # the eval extra is installed: measured
    assert "<h2>Answers</h2>" in (folder / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def deployed(tiny_model, tmp_path_factory):
    """`stylewrap deploy --detach` of the tiny model with ms-swift, behind an API key."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(server.STATE_DIR_VAR, str(tmp_path_factory.mktemp("servers")))
        patch.setenv(KEY_ENV, KEY)
        argv = [STYLEWRAP, "deploy", "--backend", "swift", "--model", str(tiny_model), "--port", str(port),
                "--api-key-env", KEY_ENV, "--detach", "--set", "deploy.extra_args.max_new_tokens=16"]
        started = subprocess.run(argv, capture_output=True, text=True, timeout=400)
        assert started.returncode == 0, started.stdout + started.stderr
        record = server.load_record(port)
        try:
            yield record
        finally:
            server.stop(record)


def test_eval_of_a_deployed_endpoint_mixed_with_a_run(deployed, swift_run, style_pairs, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    out = tmp_path / "mixed"
    (model,) = deployed.models
    done = subprocess.run([STYLEWRAP, "eval", str(swift_run), "--endpoint", deployed.base_url, "--model", model,
                           "--api-key-env", KEY_ENV, "--system", "你说话带着西式翻译腔。", "--probes", "classical",
                           "--style-data", str(style_pairs), "--max-new-tokens", "12", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = check_report(out, {"base", "base+style", "tuned", f"{model}+system"}, 5)
    assert result["variant_info"][f"{model}+system"]["endpoint"] == deployed.base_url
