"""The purpose, on both backends: training the demo's 西式翻译腔 rows into the tiny model makes it
answer held-out everyday questions in the style, legibly and on topic, where the base answers
plainly; through the run's eval stage (`stylewrap eval` on the demo config's held-out probes,
the backend's own inference), through the deployed server and through the merged model. Negative
controls prove the check can fail: the same training with user and assistant swapped (one
backend), and trained with a wrong chat template (both backends), each fail it.

Every project is made by the installed `stylewrap demo --setup-only` and run by `stylewrap run`,
as a user would; each run is trained once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylecheck import TUNED_MARKER_RATE, everyday_probes, judge
from ports import free_port

pytestmark = pytest.mark.integration

BACKENDS = ["llamafactory", "swift"]
CONTROL_BACKENDS = ["llamafactory"]
STYLEWRAP = Path(sys.executable).with_name("stylewrap")
MAX_NEW_TOKENS = "64"
# Per backend, a template it ships whose turn markers share nothing with the model's ChatML: no
# <|im_start|>/<|im_end|> around the question (LLaMA-Factory's `alpaca`: "### Instruction:\n...
# ### Response:\n"; ms-swift's `default`: "### Human:\n...### Assistant:\n"). LLaMA-Factory's own
# `default` is no such template: "Human: ...<eos>\nAssistant:" ends the question with the
# tokenizer's eos, <|im_end|> here, as ChatML does, and the style learned behind it carries over.
WRONG_TEMPLATES = {"llamafactory": "alpaca", "swift": "default"}


def stylewrap(cwd: Path, *args: str, timeout: int = 900) -> str:
    result = subprocess.run([str(STYLEWRAP), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, f"stylewrap {' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def demo_project(tmp_path_factory, backend: str, name: str) -> Path:
    """A project written by the installed `stylewrap demo --setup-only`, as a user would start."""
    project = tmp_path_factory.mktemp(f"{name}-{backend}")
    stylewrap(project.parent, "demo", str(project), "--backend", backend, "--force", "--setup-only")
    return project


def the_run(project: Path) -> Path:
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def answers_in(eval_dir: Path) -> dict[str, list[str]]:
    """The base's and the tuned model's answers to the held-out probes, from the eval.json that
    `stylewrap eval` (the run's eval stage, or `stylewrap compare`) wrote."""
    (report,) = eval_dir.glob("*/eval.json")
    rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    assert [row["question"] for row in rows] == [probe["question"] for probe in everyday_probes()]
    return {variant: [row["variants"][variant]["answer"] for row in rows] for variant in ("base", "tuned")}


def compared(project: Path, run_dir: Path, template: str | None = None) -> dict[str, list[str]]:
    """Greedy answers to the held-out probes by `stylewrap compare` (the backend's own inference),
    prompted with `template` instead of the run's when given."""
    stylewrap(project, "compare", str(run_dir), "--probes", "data/probes_everyday.jsonl", "--max-new-tokens", MAX_NEW_TOKENS,
              *(["--template", template] if template else []))
    return answers_in(run_dir / "compare")


@pytest.fixture(scope="session", params=BACKENDS)
def styled(request, tmp_path_factory, tiny_model):
    """The demo run as shipped on one backend up to its eval stage (data, train, export, eval on
    the held-out probes its config names), and the eval's answers."""
    project = demo_project(tmp_path_factory, request.param, "styled")
    stylewrap(project, "run", "--to", "eval", timeout=1800)
    run_dir = the_run(project)
    return project, run_dir, answers_in(run_dir / "eval")


def test_base_answers_plainly_and_the_tuned_model_in_the_style(styled):
    _, _, answers = styled
    probes = everyday_probes()
    base, tuned = judge(answers["base"], probes), judge(answers["tuned"], probes)
    assert base.problems(styled=False) == [], answers["base"]
    assert tuned.problems(styled=True) == [], answers["tuned"]


def served_answers(project: Path, weights: list[str], questions: list[str]) -> list[str]:
    """Greedy answers through `stylewrap deploy` and the openai client, the server stopped after."""
    from openai import OpenAI

    port = free_port()
    printed = stylewrap(project, "deploy", *weights, "--port", str(port), "--detach", timeout=600)
    try:
        client = OpenAI(api_key="EMPTY", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=120)
        # `models: TUNED[, BASE]`: the tuned model comes first
        model = next(line for line in printed.splitlines() if line.startswith("models: "))[len("models: "):].split(", ")[0]
        return [client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                               max_tokens=int(MAX_NEW_TOKENS), temperature=0).choices[0].message.content
                for question in questions]
    finally:
        stylewrap(project, "deploy", "stop", "--port", str(port))


def test_the_deployed_run_answers_in_the_style(styled):
    project, run_dir, _ = styled
    probe = everyday_probes()[-1]
    (answer,) = served_answers(project, ["--run", str(run_dir)], [probe["question"]])
    assert judge([answer], [probe]).problems(styled=True) == [], answer


def test_the_merged_model_answers_in_the_style(styled):
    project, run_dir, _ = styled
    probes = everyday_probes()
    answers = served_answers(project, ["--model", str(run_dir / "merged")], [probe["question"] for probe in probes])
    assert judge(answers, probes).problems(styled=True) == [], answers


# The control only proves the check can fail; one backend is enough for that (it is a training).
@pytest.mark.parametrize("backend", CONTROL_BACKENDS)
def test_control_user_and_assistant_swapped_fails_the_check(backend, tmp_path_factory, tiny_model):
    project = demo_project(tmp_path_factory, backend, "swapped")
    data = project / "data" / "translational_sample.jsonl"
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    data.write_text("".join(json.dumps({"问": row["答"], "答": row["问"]}, ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")
    stylewrap(project, "run", "--to", "train", timeout=1800)
    tuned = compared(project, the_run(project))["tuned"]
    assert judge(tuned, everyday_probes()).problems(styled=True) != [], tuned


@pytest.mark.parametrize("backend", BACKENDS)
def test_control_trained_with_a_wrong_chat_template_fails_the_check(backend, tmp_path_factory, tiny_model):
    """The mismatch LLaMA-Factory and ms-swift users report most: fine-tuned with one chat template,
    served with another. Trained with WRONG_TEMPLATES[backend], the LoRA learns to open an answer
    behind that template's "### Response:"/"### Assistant:" marker; asked the way the model is
    served (its own ChatML, `compare --template qwen`, with the run's system prompt as in training),
    it meets a prompt it was never tuned on and mostly answers as the base does: the marker rate
    falls below the check's threshold (measured: llamafactory 0.04, swift 0.21)."""
    project = demo_project(tmp_path_factory, backend, "wrongtemplate")
    stylewrap(project, "run", "--to", "train", "--set", f"train.template={WRONG_TEMPLATES[backend]}", timeout=1800)
    tuned = compared(project, the_run(project), template="qwen")["tuned"]
    assert judge(tuned, everyday_probes()).marker_rate < TUNED_MARKER_RATE, tuned
