"""datagen against a real local OpenAI-compatible server (tests/fakeopenai.py, own process)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from backendloaders import backend_python, load_with_backend
from fakeopenai import FakeServer, free_port
from stylewrap.adapters import read_records
from stylewrap.backends.swift.registration import dataset_entry as swift_dataset_registration
from stylewrap.cli import cli
from stylewrap.config import load_config
from stylewrap.datagen.parsing import normalize_text
from stylewrap.datagen.pipeline import DatagenJob, distinct_items, marker_coverage, read_conversations, run_datagen
from stylewrap.datagen.styles import load_style
from stylewrap.datagen.sink import Checkpoint, folder_lock
from stylewrap.datagen.stages import request_seed
from stylewrap.errors import InputError, RunFailed

pytestmark = pytest.mark.integration

KEY = "test-key"
PREFIX = "噢，亲爱的，"


@pytest.fixture(scope="module")
def fake():
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def settings(fake: FakeServer, out: Path, style: str | None = None, **datagen) -> list[str]:
    values = {"base_url": fake.base_url, "teacher_model": "teacher-1", "output_dir": str(out), "request_timeout": 0.3,
              "retry_backoff": 0.01, "max_retries": 4, "concurrency": 4, **datagen}
    return [f"datagen.{key}={value}" for key, value in values.items()] + ([f"style.preset={style}"] if style else [])


def set_flags(fake: FakeServer, out: Path, style: str | None = None, **datagen) -> list[str]:
    """The same settings as `--set` flags, for the CLI."""
    return [part for setting in settings(fake, out, style, **datagen) for part in ("--set", setting)]


def run(fake, out, stages=("stylize",), input_file=None, topics_file=None, style=None, **datagen) -> dict:
    config = load_config(None, settings(fake, out, style, **datagen), environ={}, search=False)
    return run_datagen(config, DatagenJob(stages=stages, input_file=input_file, topics_file=topics_file, show_progress=False))


def plain_rows(path: Path, count: int) -> Path:
    """The seed's stage-2 shape: {"问", "答"} rows of plain answers, distinct questions."""
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            handle.write(json.dumps({"问": f"第{number}个问题：周末做什么？", "答": f"我会去公园跑步，第{number}次。"}, ensure_ascii=False) + "\n")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def chat_log(fake, stage="stylize") -> list[dict]:
    return [entry for entry in fake.log() if entry["stage"] == stage]


# ---------------------------------------------------------------------- the client


def test_every_transient_fault_is_retried_and_retry_after_honoured(fake, tmp_path):
    fake.script(faults=[{"kind": "429", "retry_after": "0.3"}, "500", "slow", "drop"], slow_seconds=1.0)
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 1), max_attempts=1)
    log = chat_log(fake)
    assert [entry["fault"] for entry in log] == ["429", "500", "slow", "drop", None]
    assert log[1]["time"] - log[0]["time"] >= 0.29  # waited as long as Retry-After asked, not the 10 ms backoff
    assert manifest["stages"]["stylize"] == {"requested": 1, "done": 1, "errors": 0, "retryable": 0, "resumed": 0, "skipped": 0}
    assert manifest["requests"] == {"sent": 5, "retries": 4, "failed": 0,
                                    "retries_by_reason": {"HTTP 429": 1, "HTTP 500": 1, "timeout": 2}}


def test_retries_run_out_into_the_errors_file_and_a_rerun_tries_again(fake, tmp_path):
    fake.script(faults=["500", "500", "500"])
    source = plain_rows(tmp_path / "in.jsonl", 1)
    manifest = run(fake, tmp_path / "out", input_file=source, max_retries=2)
    assert len(chat_log(fake)) == 3
    [error] = lines(tmp_path / "out" / "errors.jsonl")
    assert "gave up after 3 attempts: HTTP 500" in error["reason"] and error["final"] is False
    assert manifest["stages"]["stylize"]["retryable"] == 1 and manifest["complete"] is False
    manifest = run(fake, tmp_path / "out", input_file=source, max_retries=2)
    assert manifest["complete"] is True and manifest["stages"]["stylize"]["done"] == 1
    assert manifest["stages"]["stylize"]["errors"] == 0 and len(chat_log(fake)) == 4


@pytest.mark.parametrize("fault", ["400", "404"])
def test_no_retry_on_a_request_the_server_refuses(fake, tmp_path, fault):
    fake.script(faults=[fault])
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 2), concurrency=1)
    assert len(chat_log(fake)) == 2  # the refused item once, the other one once
    [error] = lines(tmp_path / "out" / "errors.jsonl")
    assert error["reason"] == f"HTTP {fault}: scripted failure" and error["final"] is True
    assert manifest["stages"]["stylize"] == {"requested": 2, "done": 1, "errors": 1, "retryable": 0, "resumed": 0, "skipped": 0}


@pytest.mark.parametrize(
    "fault, message",
    [
        ({"kind": "401"}, r"rejected the API key \(401\)"),
        ({"kind": "404", "message": "The model `teacher-1` does not exist"}, r"model 'teacher-1' not found \(404\)"),
    ],
)
def test_a_key_or_model_refused_mid_run_stops_it_without_retrying(fake, tmp_path, fault, message):
    """A key revoked or a model withdrawn after the preflight: every request would fail the same way."""
    fake.script(faults=[fault])
    with pytest.raises(InputError, match=message):
        run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 3), concurrency=1)
    assert len(chat_log(fake)) == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and not manifest["complete"] and manifest["requests"]["retries"] == 0
    assert not (tmp_path / "out" / "stylized.jsonl").read_text()


def test_refused_parameters_are_dropped_for_the_rest_of_the_run(fake, tmp_path):
    """No JSON mode (prompt-only), max_completion_tokens for reasoning models, fixed temperature."""
    fake.script(refuse_params=["response_format", "max_tokens", "temperature"])
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 3), concurrency=1)
    assert manifest["stages"]["stylize"]["done"] == 3
    assert len(chat_log(fake)) == 3  # refused requests are answered before any work, and spent nothing
    assert manifest["requests"]["sent"] == 6  # three refusals, each learned once
    assert manifest["endpoint"] == {"json_mode": False, "tokens_param": "max_completion_tokens", "sends_temperature": False}
    for entry in chat_log(fake):
        assert "max_completion_tokens" in entry["params"] and not {"response_format", "max_tokens", "temperature"} & set(entry["params"])


@pytest.mark.parametrize("json_mode", [True, False])
def test_json_mode_sends_response_format(fake, tmp_path, json_mode):
    fake.script()
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 3), json_mode=json_mode)
    assert manifest["endpoint"]["json_mode"] is json_mode
    sent = [entry["params"].get("response_format") for entry in chat_log(fake)]
    assert sent == [{"type": "json_object"} if json_mode else None] * 3


def test_requests_in_flight_never_exceed_the_concurrency(fake, tmp_path):
    # the server holds the first requests until six are in flight, so the whole pool shows at once
    fake.script(hold_until_in_flight=6, latency=0.02)
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 40), concurrency=6, request_timeout=10)
    assert manifest["stages"]["stylize"]["done"] == 40 and manifest["requests"]["retries"] == 0
    assert max(entry["in_flight"] for entry in chat_log(fake)) == 6


@pytest.mark.parametrize(
    "script, message",
    [
        ({"api_key": "another-key"}, "rejected the API key"),
        ({"models": ["other-model"]}, "model 'teacher-1' is not served by"),
    ],
)
def test_bad_key_or_model_fails_before_spending(fake, tmp_path, script, message):
    fake.script(**script)
    with pytest.raises(InputError, match=message):
        run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 2))
    assert chat_log(fake) == []
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_server_without_models_route_refusing_the_probe_is_bad_input(fake, tmp_path):
    fake.script(models=None, faults=["400"])
    with pytest.raises(InputError, match="failed a one-token test request: HTTP 400"):
        run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 2))
    assert not (tmp_path / "out").exists()


def test_server_without_models_route_gets_a_one_token_probe(fake, tmp_path):
    fake.script(models=None)
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 2))
    assert manifest["stages"]["stylize"]["done"] == 2
    assert [entry["stage"] for entry in fake.log()] == ["models", "", "stylize", "stylize"]


def test_requests_per_minute_limit_spaces_requests(fake, tmp_path):
    fake.script()
    # 240/min: a 40-request burst, then 4 per second
    run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 46), requests_per_minute=240, concurrency=8)
    times = sorted(entry["time"] for entry in chat_log(fake))
    # once the burst has spent the bucket, requests come one per 0.25 s; measured from the 42nd
    # request, since the bucket refills while a slow (loaded) machine sends the burst
    assert len(times) == 46 and times[-1] - times[41] >= 4 * 0.25 * 0.8


def test_tokens_per_minute_limit_holds_over_the_servers_clock(fake, tmp_path):
    """By every request's arrival, the tokens the server has been sent stay within the bucket:
    ten seconds' worth at once, then the per-minute rate. The clock starts when the server
    answers the preflight /models, before the first request is let through."""
    fake.script()
    tpm = 108_000
    capacity, per_second = tpm / 6, tpm / 60
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 24), tokens_per_minute=tpm, concurrency=8)
    assert manifest["stages"]["stylize"]["done"] == 24
    [start] = [entry["time"] for entry in fake.log() if entry["stage"] == "models"]
    sent = 0
    for entry in sorted(chat_log(fake), key=lambda entry: entry["time"]):
        sent += sum(entry["usage"])
        assert sent <= capacity + per_second * (entry["time"] - start)
    assert sent > capacity  # more than one bucket: the limit had to hold requests back
    assert sent == manifest["tokens"]["input"] + manifest["tokens"]["output"]


def test_endpoint_from_the_environment(fake, tmp_path, monkeypatch):
    fake.script()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    overrides = [o for o in settings(fake, tmp_path / "out") if not o.startswith("datagen.base_url=")]
    config = load_config(None, overrides, environ={}, search=False)
    source = plain_rows(tmp_path / "in.jsonl", 1)
    assert run_datagen(config, DatagenJob(stages=("stylize",), input_file=source, show_progress=False))["complete"]
    assert fake.base_url not in (tmp_path / "out" / "manifest.json").read_text()


# ---------------------------------------------------------------------- replies


def test_wrapped_replies_are_recovered_and_bad_ones_rejected_with_reasons(fake, tmp_path):
    recovered = ["prose", "python", "fullwidth"]
    rejected = {"truncate": "truncated: finish_reason=length", "unchanged": "turn 1: answer unchanged",
                "question": "turn 1: question changed", "empty": "turn 1: empty answer", "garbage": "unparseable reply"}
    fake.script(faults=[{"kind": kind, "stage": "stylize"} for kind in [*recovered, *rejected]])
    source = plain_rows(tmp_path / "in.jsonl", 8)
    manifest = run(fake, tmp_path / "out", input_file=source, max_attempts=1, concurrency=1)
    styled = lines(tmp_path / "out" / "stylized.jsonl")
    assert len(styled) == 3 and all(row["messages"][1]["content"].startswith(PREFIX) for row in styled)
    errors = lines(tmp_path / "out" / "errors.jsonl")
    by_fault = {entry["fault"]: entry["key"] for entry in chat_log(fake)}
    for kind, reason in rejected.items():
        [error] = [e for e in errors if e["input"]["messages"][0]["content"] == by_fault[kind]]
        assert error["reason"].startswith(reason) and error["raw"] is not None
    assert manifest["stages"]["stylize"] == {"requested": 8, "done": 3, "errors": 5, "retryable": 0, "resumed": 0, "skipped": 0}
    assert manifest["complete"] is True


def test_final_errors_stay_final_unless_retried_on_request(fake, tmp_path):
    fake.script(faults=[{"kind": "truncate", "stage": "stylize"}])
    source = plain_rows(tmp_path / "in.jsonl", 2)
    assert run(fake, tmp_path / "out", input_file=source, max_attempts=1, concurrency=1)["stages"]["stylize"]["errors"] == 1
    args = ["datagen", "stylize", "-i", str(source), "--quiet", *set_flags(fake, tmp_path / "out")]
    assert CliRunner().invoke(cli, args).exit_code == 0 and len(chat_log(fake)) == 2  # nothing sent again
    result = CliRunner().invoke(cli, [*args, "--retry-errors", "--max-tokens", "2048"])
    assert result.exit_code == 0, result.output
    assert len(chat_log(fake)) == 3 and len(lines(tmp_path / "out" / "stylized.jsonl")) == 2
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["stages"]["stylize"]["errors"] == 0


def test_a_rejected_reply_is_asked_again(fake, tmp_path):
    fake.script(faults=[{"kind": "unchanged", "stage": "stylize"}, {"kind": "truncate", "stage": "stylize"}])
    manifest = run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 1), max_attempts=3)
    assert manifest["stages"]["stylize"]["done"] == 1 and len(chat_log(fake)) == 3
    [row] = lines(tmp_path / "out" / "stylized.jsonl")
    assert row["usage"]["requests"] == 3  # the rejected replies' tokens are counted too


def test_stylize_the_seed_dialogues(fake, tmp_path, shared_data):
    """`stylize` on its own, over the seed's real stage-2 file (问/答 rows, repeated questions)."""
    source = tmp_path / "2_Dialogues.jsonl"
    with (shared_data / "tsldial" / "2_Dialogues.jsonl").open(encoding="utf-8") as handle:
        source.write_text("".join(next(handle) for _ in range(60)), encoding="utf-8")
    originals = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    questions = {normalize_text(o["问"]) for o in originals}
    assert len(questions) < len(originals)  # the real file repeats itself even in its first rows
    fake.script()
    result = CliRunner().invoke(cli, ["datagen", "stylize", "-i", str(source), "--quiet", "--distinct-questions",
                                      *set_flags(fake, tmp_path / "out", concurrency=8)])
    assert result.exit_code == 0, result.output
    styled = lines(tmp_path / "out" / "stylized.jsonl")
    assert {normalize_text(row["messages"][0]["content"]) for row in styled} == questions and len(styled) == len(questions)
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text())["stages"]["stylize"]
    assert counts["done"] + counts["skipped"] == len(originals)


def test_translational_markers_tell_the_seeds_styled_answers_from_its_plain_ones(shared_data):
    markers = load_style("translational").markers
    styled = read_conversations(shared_data / "tsldial" / "3_TranslationalDialogues.jsonl")
    plain = read_conversations(shared_data / "tsldial" / "2_Dialogues.jsonl")
    assert marker_coverage([{"messages": row[1]} for row in styled], markers)["rate"] > 0.9   # 95.4%
    assert marker_coverage([{"messages": row[1]} for row in plain], markers)["rate"] < 0.02   # 0.8%


def test_distinct_questions_of_the_whole_seed_file(shared_data):
    rows = read_conversations(shared_data / "tsldial" / "2_Dialogues.jsonl")
    assert len(rows) == 12000
    kept = distinct_items(rows, by_question=True)
    assert len(kept) <= 12000 - 7493  # the README's exact repeats, and near-repeats on top
    assert len({normalize_text(item.payload["messages"][0]["content"]) for item in kept}) == len(kept)


def test_stylize_multi_turn_conversations_keeps_system_and_questions(fake, tmp_path):
    """The 古文翻译腔 shape: SWIFT conversations with a system turn and several exchanges."""
    from stylewrap.adapters import Record, write_records

    turns = [{"role": "system", "content": "你是小明。"}]
    for number in range(3):
        turns += [{"role": "user", "content": f"第{number}轮提问"}, {"role": "assistant", "content": f"第{number}轮回答。"}]
    source = tmp_path / "swift.jsonl"
    write_records([Record(messages=turns)], source, "swift")
    fake.script()
    manifest = run(fake, tmp_path / "out", input_file=source, style="classical")
    assert manifest["preset"] == "classical" and manifest["stages"]["stylize"]["done"] == 1
    assert manifest["style_markers"]["rate"] == 0.0  # the fake teacher knows only the translational prefix
    [row] = lines(tmp_path / "out" / "stylized.jsonl")
    assert row["messages"][0] == turns[0]
    assert [m["content"] for m in row["messages"] if m["role"] == "user"] == [m["content"] for m in turns if m["role"] == "user"]
    assert all(m["content"] == PREFIX + turns[i]["content"] for i, m in enumerate(row["messages"]) if m["role"] == "assistant")


# ---------------------------------------------------------------------- diversity


def test_duplicate_questions_are_replaced_until_distinct_and_balanced(fake, tmp_path):
    topics = tmp_path / "topics.txt"
    topics.write_text("天气\n电影\n音乐\n", encoding="utf-8")
    fake.script(repeat_questions=5)
    manifest = run(fake, tmp_path / "out", stages=("topics", "dialogues"), topics_file=topics,
                   num_dialogues=12, concurrency=1, max_attempts=1)
    rows = lines(tmp_path / "out" / "dialogues.jsonl")
    questions = [row["messages"][0]["content"] for row in rows]
    assert len(rows) == 12 and len(set(questions)) == 12
    assert {topic: sum(row["topic"] == topic for row in rows) for topic in ("天气", "电影", "音乐")} == {"天气": 4, "电影": 4, "音乐": 4}
    assert manifest["duplicates_rejected"] == 4 and len(chat_log(fake, "dialogues")) == 16


def test_dedup_gives_up_into_the_errors_file(fake, tmp_path):
    fake.script(repeat_questions=100)
    topics = tmp_path / "topics.txt"
    topics.write_text("宠物\n", encoding="utf-8")
    manifest = run(fake, tmp_path / "out", stages=("topics", "dialogues"), topics_file=topics, num_dialogues=3, dedup_attempts=2, concurrency=1)
    assert manifest["stages"]["dialogues"] == {"requested": 3, "done": 1, "errors": 2, "retryable": 0, "resumed": 0, "skipped": 0}
    assert all(e["reason"].startswith("duplicate question") for e in lines(tmp_path / "out" / "errors.jsonl"))


def test_too_few_topics_stops_before_the_dialogues(fake, tmp_path):
    fake.script(topics_pool=["天气"], topics_per_reply=1)
    with pytest.raises(RunFailed, match="only 1 of 2 distinct topics"):
        run(fake, tmp_path / "out", stages=("topics", "dialogues"), num_topics=2)
    assert chat_log(fake, "dialogues") == []
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["stages"]["topics"]["retryable"] == 1


def test_generated_topics_are_distinct(fake, tmp_path):
    fake.script(topics_pool=["天气", "天气！", "电影", "音乐"], topics_per_reply=3)
    manifest = run(fake, tmp_path / "out", stages=("topics",), num_topics=3)
    assert [row["topic"] for row in lines(tmp_path / "out" / "topics.jsonl")] == ["天气", "电影", "音乐"]
    assert manifest["stages"]["topics"]["done"] == 3 and len(chat_log(fake, "topics")) == 2


# ---------------------------------------------------------------------- accounting and the CLI


def test_full_run_cost_and_training_file(fake, tmp_path):
    fake.script(faults=["429"])
    dataset_dir = tmp_path / "lf"
    dataset_dir.mkdir()
    (dataset_dir / "dataset_info.json").write_text("{}\n")
    args = ["datagen", "run", "--quiet", "--num-topics", "4", "--num-dialogues", "8", "--turns", "2",
            "--price-in", "0.5", "--price-out", "2", "--format", "alpaca", "--register", str(dataset_dir),
            *set_flags(fake, tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    served = [entry for entry in fake.log() if entry.get("usage")]
    tokens_in, tokens_out = sum(e["usage"][0] for e in served), sum(e["usage"][1] for e in served)
    assert manifest["tokens"] == {"input": tokens_in, "output": tokens_out, "input_estimated": 0}
    assert manifest["cost_usd"] == pytest.approx(tokens_in / 1000 * 0.5 + tokens_out / 1000 * 2)
    assert manifest["complete"] and manifest["requests"]["retries"] == 1
    assert manifest["style_markers"] == {"answers": 16, "with_marker": 16, "rate": 1.0}  # "噢，亲爱的，" on each
    assert set(manifest["stages"]) == {"topics", "dialogues", "stylize", "build", "pairs"}
    records = list(read_records(tmp_path / "out" / "train.jsonl", "alpaca"))
    assert len(records) == 8 and all(len(r.messages) == 4 and r.messages[1]["content"].startswith(PREFIX) for r in records)
    pairs = check_pairs(tmp_path / "out", records)
    assert manifest["stages"]["pairs"]["done"] == len(pairs) == 16
    assert "stylewrap_style" in json.loads((dataset_dir / "dataset_info.json").read_text())
    assert KEY not in (tmp_path / "out" / "manifest.json").read_text() and fake.base_url not in (tmp_path / "out" / "manifest.json").read_text()
    assert "complete" in result.output and "stylize" in result.output
    fake.clear_log()
    rebuilt = CliRunner().invoke(cli, ["datagen", "build", "--format", "messages", "--set", f"datagen.output_dir={tmp_path / 'out'}"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert len(list(read_records(tmp_path / "out" / "train.jsonl", "messages"))) == 8 and fake.log() == []
    rebuilt_manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert rebuilt_manifest["teacher_model"] == "teacher-1" and rebuilt_manifest["cost_usd"] == manifest["cost_usd"]
    assert rebuilt_manifest["settings"]["output_format"] == "messages"
    # stylize checkpoints written before the plain twin was kept beside the rewrite: dialogues.jsonl has it
    stylized = tmp_path / "out" / "stylized.jsonl"
    stylized.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "plain"}, ensure_ascii=False) + "\n"
                                for row in lines(stylized)), encoding="utf-8")
    (tmp_path / "out" / "pairs.jsonl").unlink()
    assert CliRunner().invoke(cli, ["datagen", "build", "--set", f"datagen.output_dir={tmp_path / 'out'}"]).exit_code == 0
    assert len(check_pairs(tmp_path / "out", records)) == 16


def check_pairs(out: Path, records: list) -> list:
    """datagen's pairs.jsonl: each styled answer chosen over the plain answer it was rewritten from,
    in the styled conversation's context."""
    plain = {row["id"]: row["messages"] for row in lines(out / "dialogues.jsonl")}
    pairs = list(read_records(out / "pairs.jsonl", "pairs"))
    for pair in pairs:
        styled = next(r for r in records if r.meta["id"] == pair.meta["id"])
        turn = pair.meta["turn"]
        source = plain[styled.meta["source_id"]]
        assert pair.messages == styled.messages[: 2 * turn]
        assert pair.meta["rejected_response"] == [m for m in source if m["role"] == "assistant"][turn - 1]["content"]
        assert pair.messages[-1]["content"] == PREFIX + pair.meta["rejected_response"]
    return pairs


def _run_and_register(fake, tmp_path, *flags: str) -> Path:
    """`datagen run --register` with these flags; the folder registered into."""
    fake.script()
    dataset_dir = tmp_path / "registry"
    args = ["datagen", "run", "--quiet", "--num-topics", "2", "--num-dialogues", "4", "--turns", "2",
            "--register", str(dataset_dir), *flags, *set_flags(fake, tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return dataset_dir


def test_run_registers_the_training_file_with_ms_swift(fake, tmp_path):
    info = _run_and_register(fake, tmp_path, "--register-backend", "swift") / "custom_dataset_info.json"
    train = tmp_path / "out" / "train.jsonl"
    assert json.loads(info.read_text()) == [swift_dataset_registration("stylewrap_style", train, "sharegpt")]
    loaded = load_with_backend(backend_python("swift"), "swift_load.py", str(info), "stylewrap_style", tmp_path=tmp_path)
    rows = [[{"role": m["role"], "content": m["content"]} for m in row["messages"]] for row in loaded["stylewrap_style"]]
    assert rows == [record.messages for record in read_records(train, "sharegpt")]
    assert len(rows) == 4 and all(turn["content"].startswith(PREFIX) for row in rows for turn in row if turn["role"] == "assistant")


def test_register_defaults_to_the_configured_training_backend(fake, tmp_path):
    dataset_dir = _run_and_register(fake, tmp_path, "--set", "train.backend=swift")
    assert [entry["dataset_name"] for entry in json.loads((dataset_dir / "custom_dataset_info.json").read_text())] == ["stylewrap_style"]
    assert not (dataset_dir / "dataset_info.json").exists()


def test_progress_bar_and_summary_table_show_the_runs_numbers(fake, tmp_path):
    fake.script(faults=[{"kind": "truncate", "stage": "stylize"}, "429"])
    args = ["datagen", "stylize", "-i", str(plain_rows(tmp_path / "in.jsonl", 5)), "--max-attempts", "1",
            "--price-in", "0.5", "--price-out", "2", *set_flags(fake, tmp_path / "out")]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})  # no --quiet: the bar is drawn
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    tokens, cost = manifest["tokens"], manifest["cost_usd"]
    assert cost > 0 and manifest["requests"]["retries"] == 1
    [bar] = [line for line in result.output.splitlines() if line.startswith("stylize ")]
    assert re.search(r" 5/5 +[\d.]+ it/s .* ETA 0:00:00 1 err ", bar), bar
    assert bar.endswith(f" {tokens['input'] + tokens['output']:,} tok ${cost:.4f}")
    [row] = [line for line in result.output.splitlines() if line.startswith("│ stylize ")]
    assert [cell.strip() for cell in row.strip("│").split("│")] == ["stylize", "5", "4", "1", "0", "0", "0"]
    assert f"tokens in {tokens['input']:,} / out {tokens['output']:,}  cost ${cost:.4f}  requests 6 (retries 1)" in result.output
    assert "errors.jsonl" in result.output  # where the failed item's reason is


@pytest.mark.parametrize(
    "args, env, message",
    [
        ([], {"OPENAI_API_KEY": ""}, "no API key: $OPENAI_API_KEY is not set"),
        (["--base-url", "http://127.0.0.1:{closed}/v1"], {}, "cannot reach http://127.0.0.1:"),
        (["--model", "gpt-nope"], {}, "model 'gpt-nope' is not served"),
        (["--style", "{preset}"], {}, "bad.yaml:1: name"),
        (["-i", "{missing}"], {}, "missing.jsonl: input file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fake, tmp_path, monkeypatch, args, env, message):
    fake.script()
    (tmp_path / "bad.yaml").write_text("name: 'has space'\n", encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = [a.format(closed=free_port(), preset=tmp_path / "bad.yaml", missing=tmp_path / "missing.jsonl") for a in args]
    result = CliRunner().invoke(cli, ["datagen", "stylize", "-i", str(plain_rows(tmp_path / "in.jsonl", 2)),
                                      *set_flags(fake, tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert chat_log(fake) == [] and not (tmp_path / "out").exists()


def test_registering_with_an_unknown_backend_fails_before_spending(fake, tmp_path):
    fake.script()
    result = CliRunner().invoke(cli, ["datagen", "run", "--register", str(tmp_path / "registry"), "--set", "train.backend=axolotl",
                                      *set_flags(fake, tmp_path / "out")])
    assert result.exit_code == 2 and "cannot register a dataset with backend 'axolotl'" in result.output
    assert fake.log() == [] and not (tmp_path / "out").exists()


def test_prompt_change_refuses_to_mix_runs(fake, tmp_path):
    fake.script()
    source = plain_rows(tmp_path / "in.jsonl", 2)
    run(fake, tmp_path / "out", input_file=source)
    config = load_config(None, [*settings(fake, tmp_path / "out"), "style.preset=classical"], environ={}, search=False)
    with pytest.raises(InputError, match="another prompts sha256"):
        run_datagen(config, DatagenJob(stages=("stylize",), input_file=source, show_progress=False))


def test_one_run_per_output_folder(fake, tmp_path):
    fake.script()
    with folder_lock(tmp_path / "out"):
        with pytest.raises(InputError, match="another `stylewrap datagen` run is writing here"):
            run(fake, tmp_path / "out", input_file=plain_rows(tmp_path / "in.jsonl", 2))
    assert chat_log(fake) == []


# ---------------------------------------------------------------------- kill -9 and Ctrl-C


def test_torn_last_line_is_ignored_and_cut(tmp_path):
    path = tmp_path / "stylized.jsonl"
    path.write_text('{"id": "a", "x": 1}\n{"id": "b", "x"', encoding="utf-8")
    with Checkpoint(path) as checkpoint:
        assert list(checkpoint.records) == ["a"] and checkpoint.torn_bytes == len('{"id": "b", "x"')
        checkpoint.append({"id": "c"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "c"]


def _cli(fake, out: Path, source: Path) -> list[str]:
    return [
        sys.executable, "-m", "stylewrap", "datagen", "stylize", "--quiet", "-i", str(source),
        *set_flags(fake, out, concurrency=4, manifest_every_s=0.05),
    ]


def _stop_midway(command: list[str], checkpoint: Path, after: int, sig: int) -> int:
    process = subprocess.Popen(command, env={**os.environ, "OPENAI_API_KEY": KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None:
        if checkpoint.exists() and checkpoint.read_bytes().count(b"\n") >= after:
            os.kill(process.pid, sig)
            break
        time.sleep(0.01)
    return process.wait(timeout=30)


def test_kill_9_and_ctrl_c_resume_without_duplicates_or_losses(fake, tmp_path):
    count = 120
    fake.script(latency=0.03)
    source = plain_rows(tmp_path / "in.jsonl", count)
    out = tmp_path / "out"
    checkpoint = out / "stylized.jsonl"
    command = _cli(fake, out, source)

    finished_before: set[str] = set()
    for sig, after in ((signal.SIGKILL, 15), (signal.SIGINT, 50)):
        fake.clear_log()
        code = _stop_midway(command, checkpoint, after, sig)
        assert code == -signal.SIGKILL if sig == signal.SIGKILL else code != 0
        assert json.loads((out / "manifest.json").read_text())["status"] in ("running", "interrupted")
        sent = [entry["key"] for entry in chat_log(fake)]
        assert not set(sent) & finished_before, "a finished item was sent again"
        finished_before = {row["messages"][0]["content"] for row in Checkpoint(checkpoint).values()}
        assert count > len(finished_before) >= after
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"

    fake.clear_log()
    done = subprocess.run(command, env={**os.environ, "OPENAI_API_KEY": KEY}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    resent = [entry["key"] for entry in chat_log(fake)]
    assert not set(resent) & finished_before and len(resent) == count - len(finished_before)
    ids = [row["id"] for row in lines(checkpoint)]
    assert len(ids) == len(set(ids)) == count
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["sessions"] == 3  # the kill -9'd run left a refreshed manifest
    served = [entry for entry in fake.log() if entry.get("usage")]
    assert manifest["tokens"]["output"] >= sum(entry["usage"][1] for entry in served)
    assert manifest["stages"]["stylize"]["resumed"] == len(finished_before)


def test_kill_9_during_dialogues_resumes_without_duplicates_losses_or_resends(fake, tmp_path):
    count, max_attempts, dedup_attempts = 60, 3, 30
    topics = tmp_path / "topics.txt"
    topics.write_text("天气\n电影\n音乐\n", encoding="utf-8")
    out = tmp_path / "out"
    checkpoint = out / "dialogues.jsonl"
    command = [sys.executable, "-m", "stylewrap", "datagen", "dialogues", "--quiet", "--topics-file", str(topics),
               "--num-dialogues", str(count), "--dedup-attempts", str(dedup_attempts),
               *set_flags(fake, out, concurrency=4, manifest_every_s=0.05, max_attempts=max_attempts)]
    fake.script(latency=0.03, repeat_questions=3)
    assert _stop_midway(command, checkpoint, 15, signal.SIGKILL) == -signal.SIGKILL
    finished = {row["id"] for row in Checkpoint(checkpoint).values()}
    assert count > len(finished) >= 15

    # the teacher starts over: its first replies repeat questions the killed run already accepted
    fake.script(latency=0.03, repeat_questions=3)
    done = subprocess.run(command, env={**os.environ, "OPENAI_API_KEY": KEY}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = lines(checkpoint)
    assert len({row["id"] for row in rows}) == len(rows) == count  # no id twice, none lost
    assert not (out / "errors.jsonl").exists() or not lines(out / "errors.jsonl")
    assert len({normalize_text(row["messages"][0]["content"]) for row in rows}) == count  # distinct across both runs
    sent = chat_log(fake, "dialogues")
    # every ask carries a seed derived from (item id, attempt): none of a finished item's came again
    finished_seeds = {request_seed(0, item_id, attempt) for item_id in finished for attempt in range(max_attempts + dedup_attempts)}
    assert not {entry["params"]["seed"] for entry in sent} & finished_seeds
    assert len(sent) == sum(row["usage"]["requests"] for row in rows if row["id"] not in finished)
    assert len(sent) >= count - len(finished) + 3  # the repeats were asked again, not kept
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["stages"]["dialogues"]["resumed"] == len(finished)
    assert manifest["duplicates_rejected"] >= 3 and manifest["sessions"] == 2
