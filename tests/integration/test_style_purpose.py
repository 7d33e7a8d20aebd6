"""The purpose, on both backends: training the demo's 西式翻译腔 rows into the tiny model makes it
answer held-out everyday questions in the style, legibly and on topic, where the base answers
plainly; through `compare` (the backend's own inference), through the deployed server and
through the merged model. Two negative controls prove the check can fail: the same training with
user and assistant swapped, and with the wrong chat template, each fail it.

Every project is made by the installed `stylewrap demo` and trained by `stylewrap train`, as a
user would; each run is trained once per session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stylecheck import everyday_probes, judge

pytestmark = pytest.mark.integration

BACKENDS = ["llamafactory", "swift"]
STYLEWRAP = Path(sys.executable).with_name("stylewrap")
MAX_NEW_TOKENS = "64"
# A template both backends know that is not the model's ChatML: "Human: ...\nAssistant: ..."
WRONG_TEMPLATE = "default"


def stylewrap(cwd: Path, *args: str, timeout: int = 900) -> str:
    result = subprocess.run([str(STYLEWRAP), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, f"stylewrap {' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def trained_demo(tmp_path_factory, backend: str, name: str, *, swap_roles: bool = False, template: str | None = None):
    """A `stylewrap demo` project trained with its own config: (project, run_dir)."""
    project = tmp_path_factory.mktemp(f"{name}-{backend}")
    stylewrap(project.parent, "demo", str(project), "--backend", backend, "--force")
    if swap_roles:
        data = project / "data" / "translational_sample.jsonl"
        rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
        data.write_text("".join(json.dumps({"问": row["答"], "答": row["问"]}, ensure_ascii=False) + "\n" for row in rows),
                        encoding="utf-8")
    stylewrap(project, "train", "--quiet", *(["--set", f"train.template={template}"] if template else []))
    (run_dir,) = (project / "runs").iterdir()
    return project, run_dir


def compared(project: Path, run_dir: Path, template: str | None = None) -> dict[str, list[str]]:
    """Greedy answers of the base and the tuned model to the held-out probes, by `stylewrap compare`."""
    stylewrap(project, "compare", str(run_dir), "--probes", "data/probes_everyday.jsonl",
              "--max-new-tokens", MAX_NEW_TOKENS, *(["--template", template] if template else []))
    report = sorted((run_dir / "compare").glob("*/report.json"))[-1]
    rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    assert [row["question"] for row in rows] == [probe["question"] for probe in everyday_probes()]
    return {variant: [row[variant] for row in rows] for variant in ("base", "tuned")}


@pytest.fixture(scope="session", params=BACKENDS)
def styled(request, tmp_path_factory, tiny_model):
    """The demo trained as shipped on one backend, and its compare answers."""
    project, run_dir = trained_demo(tmp_path_factory, request.param, "styled")
    return project, run_dir, compared(project, run_dir)


def test_base_answers_plainly_and_the_tuned_model_in_the_style(styled):
    _, _, answers = styled
    probes = everyday_probes()
    base, tuned = judge(answers["base"], probes), judge(answers["tuned"], probes)
    assert base.problems(styled=False) == [], answers["base"]
    assert tuned.problems(styled=True) == [], answers["tuned"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    stylewrap(project, "export", str(run_dir))
    probes = everyday_probes()
    answers = served_answers(project, ["--model", str(run_dir / "merged")], [probe["question"] for probe in probes])
    assert judge(answers, probes).problems(styled=True) == [], answers


@pytest.mark.parametrize("backend", BACKENDS)
def test_control_user_and_assistant_swapped_fails_the_check(backend, tmp_path_factory, tiny_model):
    project, run_dir = trained_demo(tmp_path_factory, backend, "swapped", swap_roles=True)
    tuned = compared(project, run_dir)["tuned"]
    assert judge(tuned, everyday_probes()).problems(styled=True) != [], tuned


@pytest.mark.parametrize("backend", BACKENDS)
def test_control_wrong_chat_template_fails_the_check(backend, tmp_path_factory, tiny_model):
    # trained with a template the model was not built for, answering the way it is served: ChatML
    project, run_dir = trained_demo(tmp_path_factory, backend, "wrongtemplate", template=WRONG_TEMPLATE)
    tuned = compared(project, run_dir, template="qwen")["tuned"]
    assert judge(tuned, everyday_probes()).problems(styled=True) != [], tuned
