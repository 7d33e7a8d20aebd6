"""`stylewrap demo` sets up a project that every later command accepts as it is."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from stylewrap.cli import cli
from stylewrap.config import load_config

pytestmark = pytest.mark.integration


def test_demo_project_is_complete_and_valid(tmp_path):
    target = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", str(target), "--backend", "swift", "--setup-only"])
    assert result.exit_code == 0, result.output
    config = load_config(target / "stylewrap.yaml")
    assert config.train.backend == "swift"
    model = config.resolve_path(config.train.model)
    assert json.loads((model / "config.json").read_text())["model_type"] == "qwen2"
    assert "<|im_start|>" in json.loads((model / "tokenizer_config.json").read_text())["chat_template"]
    rows = [json.loads(row) for row in (target / "data" / "translational_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    plain = [json.loads(row) for row in (target / "data" / "translational_plain.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(plain) == 300 and all({"问", "答"} == set(row) for row in rows + plain)
    # twins: the same question, the styled answer is the plain one with the style's words around it
    assert all(s["问"] == p["问"] and p["答"] in s["答"] and len(s["答"]) > len(p["答"]) for s, p in zip(rows, plain))
    probes = [json.loads(row) for row in (target / "data" / "probes_everyday.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {probe["question"] for probe in probes}.isdisjoint(row["问"] for row in rows)
    # the run's eval stage measures on those held-out probes, not on the style's own
    assert config.resolve_path(config.eval.probes) == (target / "data" / "probes_everyday.jsonl").resolve()
    # relative paths, so the folder can be moved as a whole
    assert not yaml.safe_load((target / "stylewrap.yaml").read_text())["train"]["model"].startswith("/")


def test_demo_refuses_to_overwrite_without_force(tmp_path):
    (tmp_path / "stylewrap.yaml").write_text("train: {}\n")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path), "--setup-only"])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert (tmp_path / "stylewrap.yaml").read_text() == "train: {}\n"
