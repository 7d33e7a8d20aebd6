"""The seeds' datagen gaps through the console script against a real local OpenAI-compatible
server (tests/fakeopenai.py): a run where every item failed stops with exit 1 and registers
nothing; the training file can be the seed's alpaca JSON array (TslDial.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import run_stylewrap
from fakeopenai import FakeServer

pytestmark = pytest.mark.integration

KEY = "test-key"


@pytest.fixture(scope="module")
def fake():
    server = FakeServer()
    yield server
    server.stop()


def flags(fake: FakeServer, out: Path) -> list[str]:
    values = {"base_url": fake.base_url, "teacher_model": "teacher-1", "output_dir": str(out), "request_timeout": 2,
              "retry_backoff": 0.01, "max_retries": 0, "max_attempts": 1, "concurrency": 2}
    return [part for key, value in values.items() for part in ("--set", f"datagen.{key}={value}")]


def plain_rows(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"问": f"第{n}个问题：周末做什么？", "答": f"我会去公园跑步，第{n}次。"},
                                       ensure_ascii=False) + "\n" for n in range(count)), encoding="utf-8")
    return path


def test_every_item_failed_exits_1_and_registers_nothing(fake, tmp_path):
    fake.script(faults=[{"kind": "garbage", "stage": "stylize"}] * 3)
    out, registry = tmp_path / "out", tmp_path / "registry"
    result = run_stylewrap("datagen", "stylize", "-i", plain_rows(tmp_path / "in.jsonl", 3), *flags(fake, out),
                           cwd=tmp_path, env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr   # stylize alone: the errors are recorded, the run is complete
    result = run_stylewrap("datagen", "build", "--register", registry, *flags(fake, out), cwd=tmp_path,
                           env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no item was stylized" in result.stderr and "errors.jsonl" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "train.jsonl").exists() and not registry.exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed" and not manifest["complete"]
    assert manifest["stages"]["stylize"]["errors"] == 3


def test_the_training_file_as_the_seeds_alpaca_json_array(fake, tmp_path):
    fake.script(faults=[])
    out = tmp_path / "out"
    result = run_stylewrap("datagen", "stylize", "-i", plain_rows(tmp_path / "in.jsonl", 3), *flags(fake, out),
                           cwd=tmp_path, env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    result = run_stylewrap("datagen", "build", "--format", "alpaca", "--train-file", "TslDial.json", *flags(fake, out),
                           cwd=tmp_path, env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "TslDial.json").read_text(encoding="utf-8"))   # one JSON array, as the seed's
    assert isinstance(rows, list) and len(rows) == 3
    assert set(rows[0]) >= {"instruction", "input", "output"} and rows[0]["output"].startswith("噢，亲爱的，")
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["files"]["train"] == "TslDial.json"
