"""`stylewrap eval --endpoint` and the judge against a real local OpenAI-compatible HTTP server
(tests/fakeopenai.py, scripted per test): a plain and a styled model answer the probes; the judge
is consistent, follows the position, sends malformed JSON, or is rate limited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fakeopenai import FakeServer
from stylewrap.config import load_config
from stylewrap.eval.entry import EvalRequest, plan_eval, run_eval
from stylewrap.eval.judge import ATTEMPTS

pytestmark = pytest.mark.integration

KEY = "test-key"
STYLED = "噢，亲爱的，"
REPLIES = {"plain": "关于“{question}”，我的回答是：我觉得挺好的，等于3575。",
           "styled": STYLED + "关于“{question}”，我的回答是：我觉得挺好的，等于3575。"}
STYLEWRAP = str(Path(sys.executable).parent / "stylewrap")
REQUIRED = ("marker_rate", "p_style", "chrf_masked", "correct", "distinct2", "repetition", "length")


@pytest.fixture(scope="module")
def fake():
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pairs(shared_data, tmp_path_factory) -> Path:
    folder = shared_data / "tsldial"
    styled = {}
    for line in (folder / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()[:600]:
        row = json.loads(line)
        styled[row["问"]] = row["答"]
    out = tmp_path_factory.mktemp("style") / "pairs.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        for line in (folder / "2_Dialogues.jsonl").read_text(encoding="utf-8").splitlines()[:600]:
            row = json.loads(line)
            if row["问"] in styled:
                handle.write(json.dumps({"plain": row["答"], "styled": styled[row["问"]]}, ensure_ascii=False) + "\n")
    return out


@pytest.fixture
def project(tmp_path, fake, monkeypatch) -> Path:
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump({"datagen": {
        "base_url": fake.base_url, "retry_backoff": 0.01, "max_retries": 3}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("STYLEWRAP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def script(fake, **settings) -> None:
    fake.script(**{"models": ["plain", "styled", "judge-1"], "api_key": KEY, "replies": REPLIES, **settings})


def evaluate(project: Path, pairs: Path, fake, **request) -> dict:
    plan = plan_eval(EvalRequest(endpoint=fake.base_url, models=["plain", "styled"], probes="classical",
                                 style_data=pairs, out_dir=project / "out", reference="plain", **request),
                     load_config(project / "stylewrap.yaml"))
    return run_eval(plan).summary


def judge_requests(fake) -> list[dict]:
    return [entry for entry in fake.log() if entry["stage"] == "judge"]


def test_eval_of_two_endpoint_models_through_the_console_script(project, pairs, fake):
    script(fake)
    argv = [STYLEWRAP, "eval", "--endpoint", fake.base_url, "--model", "plain", "--model", "styled",
            "--probes", "classical", "--style-data", str(pairs), "--judge-model", "judge-1", "--out", "out",
            "--reference", "plain"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:3] == ["variant", "j", "marker_rate"]
    assert f"report: out/report.html" in done.stdout
    result = json.loads((project / "out" / "eval.json").read_text(encoding="utf-8"))
    assert result["probes"] == 5 and set(result["variants"]) == {"plain", "styled"}
    for name, values in result["variants"].items():
        for metric in (*REQUIRED, *(("judge_win_rate",) if name != "plain" else ())):   # the reference is not judged
            assert values[metric]["low"] <= values[metric]["mean"] <= values[metric]["high"], (name, metric)
    plain, styled = result["variants"]["plain"], result["variants"]["styled"]
    assert styled["marker_rate"]["mean"] == 1.0 and plain["marker_rate"]["mean"] == 0.0
    assert styled["p_style"]["mean"] > 0.5 > plain["p_style"]["mean"]
    assert styled["chrf_masked"]["mean"] == pytest.approx(1.0)      # the markers were the only difference
    assert styled["correct"]["mean"] == 1.0 / 2                      # 3575 is right for one of two known answers
    assert styled["judge_win_rate"]["mean"] == 1.0                   # the judge prefers the marked answer in both orders
    assert result["judge"]["calls"] == 10 and result["judge"]["missing"] == 0
    assert result["classifier"]["held_out_auc"] > 0.9
    html = (project / "out" / "report.html").read_text(encoding="utf-8")
    assert f"<mark>噢</mark>，<mark>亲爱的</mark>，关于“你是谁？”" in html
    assert (project / "out" / "metrics.png").read_bytes().startswith(b"\x89PNG")
    assert html.index("Headline") < html.index("<h2>Metrics</h2>") < html.index("<h2>Answers</h2>")

    fake.clear_log()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=project)
    assert again.returncode == 0, again.stderr
    assert judge_requests(fake) == []                               # every verdict came from the cache
    assert json.loads((project / "out" / "eval.json").read_text())["judge"]["cached"] == 10


def test_a_judge_that_follows_the_position_counts_as_ties(project, pairs, fake):
    script(fake, judge="first")
    result = evaluate(project, pairs, fake, judge_model="judge-1")
    assert result["variants"]["styled"]["judge_win_rate"]["mean"] == 0.5
    assert {row["variants"]["styled"]["judge"]["overall"] for row in result["rows"]} == {"tie"}
    assert result["judge"]["position_flips"] == 5


def test_malformed_verdicts_are_asked_again_and_429s_waited_out(project, pairs, fake):
    script(fake, faults=[{"kind": "429", "stage": "judge"}, {"kind": "garbage", "stage": "judge"},
                         {"kind": "garbage", "stage": "judge"}])
    result = evaluate(project, pairs, fake, judge_model="judge-1")
    assert result["judge"]["malformed"] == 2 and result["judge"]["missing"] == 0
    assert result["variants"]["styled"]["judge_win_rate"]["mean"] == 1.0
    assert [e["fault"] for e in judge_requests(fake)].count("429") == 1


def test_a_judge_that_never_answers_in_json_is_missing_not_a_crash(project, pairs, fake):
    script(fake, faults=[{"kind": "garbage", "stage": "judge"}] * 100)
    result = evaluate(project, pairs, fake, judge_model="judge-1")
    assert result["judge"]["missing"] == 5 and result["judge"]["malformed"] == 10 * ATTEMPTS
    assert "judge_win_rate" not in result["variants"]["styled"]
    assert all(row["variants"]["styled"]["judge"] is None for row in result["rows"])
    assert not list((project / "cache").rglob("*.json"))             # a malformed verdict is never cached


def test_missing_eval_extra_is_one_line_naming_the_extra(project):
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from stylewrap.cli import main; sys.argv = ['stylewrap', *sys.argv[1:]]; main()")
    done = subprocess.run([sys.executable, "-c", code, "eval", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m"],
                          capture_output=True, text=True, timeout=60, cwd=project)
    assert done.returncode == 2
    # besides the `config: PATH` notice every command gives (issue 12, H3), one line
    errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("config: ")]
    assert errors == ["Error: stylewrap eval needs scikit-learn: pip install 'stylewrap[eval]'"]


@pytest.mark.parametrize("argv, message", [
    (["eval"], "nothing to evaluate"),
    (["eval", "--model", "m"], "--model needs --endpoint"),
    (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--probes", "no-such-set"], "no-such-set"),
])
def test_bad_invocations_are_one_line_and_exit_2(project, argv, message):
    done = subprocess.run([STYLEWRAP, *argv], capture_output=True, text=True, timeout=60, cwd=project)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (project / "eval").exists()


def test_without_the_extra_the_report_still_shows_answers_flags_and_markers(project, fake):
    """What `compare` does on a core install: the same report, no numbers, a line saying how to get them."""
    script(fake, replies={"plain": "", "styled": STYLED + "好的。"})
    plan = plan_eval(EvalRequest(endpoint=fake.base_url, models=["plain", "styled"], probes="classical",
                                 out_dir=project / "bare", reference="plain"),
                     load_config(project / "stylewrap.yaml"), measure=False)
    result = run_eval(plan).summary
    assert result["variants"] == {} and result["classifier"] is None
    html = (project / "bare" / "report.html").read_text(encoding="utf-8")
    assert "pip install &#39;stylewrap[eval]&#39;" in html or "pip install 'stylewrap[eval]'" in html
    assert html.count('<span class="flag">empty</span>') == 5 and "<mark>亲爱的</mark>" in html
    assert not (project / "bare" / "metrics.png").exists()


def test_an_unknown_reference_fails_before_any_model_answers(project, fake):
    script(fake)
    done = subprocess.run([STYLEWRAP, "eval", "--endpoint", fake.base_url, "--model", "plain", "--reference", "tuned"],
                          capture_output=True, text=True, timeout=60, cwd=project)
    assert done.returncode == 2 and "--reference 'tuned' is not one of the variants: plain" in done.stderr
    assert [e for e in fake.log() if e["stage"] != "models"] == []


def test_p_style_learns_from_the_datagen_folder_of_the_config_when_no_style_data_is_given(project, fake):
    """A real `stylewrap datagen run` (topics, dialogues, stylize against the scripted teacher) into
    the config's datagen.output_dir: eval finds its dialogues.jsonl/stylized.jsonl pairs by itself."""
    from click.testing import CliRunner

    from stylewrap.cli import cli

    script(fake, models=["plain", "styled", "teacher-1"])
    generated = CliRunner().invoke(cli, ["datagen", "run", "--quiet", "--num-topics", "4", "--num-dialogues", "24",
                                         "--set", f"datagen.base_url={fake.base_url}", "--set", "datagen.teacher_model=teacher-1"])
    assert generated.exit_code == 0, generated.output
    result = evaluate(project, None, fake)
    assert result["classifier"]["source"] == "data/generated" and result["classifier"]["held_out_rows"] >= 8
    # the toy teacher's dialogues are far from the probe answers: the classifier is unsure, yet ranks them right
    styled, plain = result["variants"]["styled"]["p_style"], result["variants"]["plain"]["p_style"]
    assert styled["low"] > plain["high"], (styled, plain)


def test_a_judge_without_a_key_fails_before_any_model_answers(project, fake, monkeypatch):
    script(fake)
    monkeypatch.delenv("OPENAI_API_KEY")
    done = subprocess.run([STYLEWRAP, "eval", "--endpoint", fake.base_url, "--model", "plain", "--api-key-env", "NO_KEY",
                           "--judge-model", "judge-1"], capture_output=True, text=True, timeout=60, cwd=project,
                          env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"})
    assert done.returncode == 2 and "no API key: $OPENAI_API_KEY is not set" in done.stderr
    assert [e for e in fake.log() if e["stage"] != "models"] == []
