"""`stylewrap init`, `stylewrap config show`, and how errors reach the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from click.testing import CliRunner

from fakekeys import modelscope_token, openai_key

from stylewrap.cli import cli
from stylewrap.config import OPTIONAL_STAGE_SECTIONS, load_config

SECTIONS = ("style", "datagen", "data", "train", "export", "eval", "deploy", "publish")


def test_init_writes_every_section_commented(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "project")])
    assert result.exit_code == 0, result.output
    path = tmp_path / "project" / "stylewrap.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for section in SECTIONS:
        # the optional stages of `stylewrap run` are written commented out, under a line saying so
        optional = section in OPTIONAL_STAGE_SECTIONS
        start = lines.index(f"# {section}:" if optional else f"{section}:")
        above = lines[start - 2 if optional else start - 1]
        assert above.startswith("# ") and len(above) > 10, f"{section} has no comment above it"
        indent = "#   " if optional else "  "
        body = []
        for line in lines[start + 1:]:
            if not line.startswith(indent):
                break
            body.append(line)
        assert body and any("  # " in line for line in body), f"{section}: no key explains itself"
    written = set(yaml.safe_load(text))
    assert set(SECTIONS) - set(OPTIONAL_STAGE_SECTIONS) <= written and not written & set(OPTIONAL_STAGE_SECTIONS)
    assert load_config(path, environ={}).model_dump() == load_config(None, search=False, environ={}).model_dump()


def test_config_show_prints_the_effective_config_without_secrets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stylewrap.yaml").write_text("train:\n  learning_rate: 0.1\n  lora_rank: 4\n", encoding="utf-8")
    monkeypatch.setenv("STYLEWRAP_TRAIN__LORA_RANK", "16")
    monkeypatch.setenv("OPENAI_API_KEY", openai_key(11))
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", modelscope_token(12))
    result = CliRunner().invoke(cli, ["config", "show", "--set", "datagen.concurrency=8"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert (shown["train"]["learning_rate"], shown["train"]["lora_rank"], shown["datagen"]["concurrency"]) == (0.1, 16, 8)
    assert openai_key(11) not in result.output and modelscope_token(12) not in result.output
    # what it shows is a config file that reproduces the effective config on its own
    (tmp_path / "shown.yaml").write_text(result.stdout, encoding="utf-8")
    effective = load_config(tmp_path / "stylewrap.yaml", ["datagen.concurrency=8"], environ={"STYLEWRAP_TRAIN__LORA_RANK": "16"})
    assert load_config(tmp_path / "shown.yaml", environ={}).model_dump() == effective.model_dump()


def _stylewrap(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "STYLEWRAP_DEBUG"}
    return subprocess.run([sys.executable, "-m", "stylewrap", *args], capture_output=True, text=True,
                          env={**environ, **env}, timeout=60)


def test_an_error_is_one_line_and_stylewrap_debug_shows_the_traceback(tmp_path):
    args = ("config", "validate", "--config", str(tmp_path / "missing.yaml"))
    plain = _stylewrap(*args)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [f"Error: {tmp_path / 'missing.yaml'}: config file not found (run `stylewrap init`)"]
    debug = _stylewrap(*args, STYLEWRAP_DEBUG="1")
    assert debug.returncode == 1  # Python's own exit for an uncaught exception
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert "stylewrap.errors.ConfigError: " in debug.stderr and "load_config" in debug.stderr
