"""Hostile stylewrap.yaml files and overrides: each is refused at once with exit 2 and one line
naming file:line (or the flag / variable that set it), never a hang, a MemoryError or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import run_stylewrap


def list_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "train:\n  extra_args:\n" + "".join(f"    {line}\n" for line in lines)


def map_bomb() -> str:
    lines = ["m0: &m0 {a: x, b: x, c: x, d: x, e: x, f: x, g: x, h: x, i: x}"]
    lines += [f"m{i}: &m{i} {{{', '.join(f'{k}: *m{i - 1}' for k in 'abcdefghi')}}}" for i in range(1, 10)]
    return "deploy:\n  extra_args:\n" + "".join(f"    {line}\n" for line in lines)


HOSTILE = {
    "list-bomb": (list_bomb(), "expands to more than 100000 values through its aliases"),
    "map-bomb": (map_bomb(), "expands to more than 100000 values through its aliases"),
    "deep": ("train:\n  extra_args:\n    x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
    "self-alias": ("train:\n  extra_args: &a\n    x: *a\n", "an alias refers to a value that contains it"),
    "inf-epochs": ("train:\n  num_train_epochs: .inf\n", "train.num_train_epochs: input should be a finite number"),
    "nan-lr": ("train:\n  learning_rate: .nan\n", "train.learning_rate: input should be a finite number"),
}


@pytest.mark.parametrize("command", [["config", "validate"], ["config", "show"], ["render", "--out", "r"]])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_config_is_refused_at_once(tmp_path, case, command):
    text, message = HOSTILE[case]
    (tmp_path / ".git").mkdir()
    (tmp_path / "stylewrap.yaml").write_text(text, encoding="utf-8")
    done = run_stylewrap(*command, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout[:500] + done.stderr[-2000:]
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith(f"Error: {tmp_path / 'stylewrap.yaml'}:") and message in error
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("override, blamed", [
    ("train.learning_rate=.inf", "--set train.learning_rate=.inf: train.learning_rate"),
    ('train={"lora_rank": -1}', '--set train={"lora_rank": -1}: train.lora_rank'),
])
def test_an_override_error_blames_the_override_not_the_file(tmp_path, override, blamed):
    (tmp_path / ".git").mkdir()
    (tmp_path / "stylewrap.yaml").write_text("train:\n  lora_rank: 4\n  learning_rate: 0.1\n", encoding="utf-8")
    done = run_stylewrap("config", "validate", "--set", override, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and f"Error: {blamed}" in done.stderr, done.stderr


def test_a_hostile_train_preset_is_refused(tmp_path):
    (tmp_path / ".git").mkdir()
    preset = tmp_path / "preset.yaml"
    preset.write_text("config:\n" + "".join(f"  {line}\n" for line in list_bomb().splitlines()), encoding="utf-8")
    done = run_stylewrap("render", "--out", "r", "--preset", preset, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "expands to more than" in done.stderr, done.stderr[-2000:]
