"""datagen against a real local teacher (tests/fakeopenai.py, own process) that misbehaves, through
the installed console script: a reply dripped out slower than --timeout, a run killed with -9
while requests are in flight, an item that fails and then succeeds."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from console import run_stylewrap, start_stylewrap
from fakeopenai import FakeServer

KEY = "test-key"


@pytest.fixture(scope="module")
def teacher():
    server = FakeServer()
    yield server
    server.stop()


def plain_rows(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"问": f"第{n}个问题：周末做什么？", "答": f"去公园跑步，第{n}次。"}, ensure_ascii=False) + "\n"
                            for n in range(count)), encoding="utf-8")
    return path


def stylize_args(teacher: FakeServer, folder: Path, count: int, *extra: str) -> list:
    return ["datagen", "stylize", "-i", plain_rows(folder / "plain.jsonl", count), "-o", "out", "--base-url", teacher.base_url,
            "--model", "teacher-1", "--quiet", *extra]


def env_for(folder: Path) -> dict:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": None, "HOME": str(folder)}


def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    return tmp_path


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_timeout_is_a_deadline_for_the_whole_reply(teacher, tmp_path):
    folder = project(tmp_path)
    teacher.script(faults=["drip"], drip_pieces=10, drip_interval=0.4)  # each read 0.4 s apart, 4 s in all
    done = run_stylewrap(*stylize_args(teacher, folder, 1, "--timeout", "1", "--max-retries", "0", "--max-attempts", "1"),
                         cwd=folder, env=env_for(folder))
    assert done.returncode == 1, done.stdout + done.stderr  # the item is left for a rerun
    [error] = jsonl(folder / "out" / "errors.jsonl")
    assert "timeout: no whole reply within 1 s" in error["reason"] and error["final"] is False
    assert not (folder / "out" / "stylized.jsonl").read_text(encoding="utf-8")


def test_an_item_that_failed_and_then_succeeded_leaves_errors_jsonl(teacher, tmp_path):
    folder = project(tmp_path)
    teacher.script(faults=["500"])
    args = stylize_args(teacher, folder, 3, "--max-retries", "0", "--concurrency", "1")
    assert run_stylewrap(*args, cwd=folder, env=env_for(folder)).returncode == 1
    assert len(jsonl(folder / "out" / "errors.jsonl")) == 1
    teacher.script()
    rerun = run_stylewrap(*args, cwd=folder, env=env_for(folder))
    assert rerun.returncode == 0, rerun.stderr
    assert jsonl(folder / "out" / "errors.jsonl") == [] and len(jsonl(folder / "out" / "stylized.jsonl")) == 3


def test_a_kill_9_mid_request_loses_no_paid_request_from_the_ledger(teacher, tmp_path):
    folder = project(tmp_path)
    teacher.script(latency=60.0)  # every request hangs: all four are in flight at the kill
    args = stylize_args(teacher, folder, 4, "--concurrency", "4", "--timeout", "120")
    first = start_stylewrap(*args, cwd=folder, env=env_for(folder))
    try:
        for _ in range(600):
            if len([e for e in teacher.log() if e["stage"] == "stylize"]) == 4:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the four requests never arrived")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        first.stdout.close()
        first.stderr.close()
    teacher.script()  # fast again; the script's log starts over
    teacher.clear_log()
    rerun = run_stylewrap(*args, cwd=folder, env=env_for(folder))
    assert rerun.returncode == 0, rerun.stderr
    manifest = json.loads((folder / "out" / "manifest.json").read_text(encoding="utf-8"))
    served = [e for e in teacher.log() if e["stage"] == "stylize"]
    assert manifest["requests"]["sent"] == 4 + len(served) == 8  # the killed run's four are counted
    answered_in = sum(e["usage"][0] for e in served)
    assert manifest["tokens"]["input_estimated"] > 0
    assert manifest["tokens"]["input"] == answered_in + manifest["tokens"]["input_estimated"]
