"""`stylewrap --help` stays fast: no heavy import, every command documented."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from stylewrap.cli import COMMANDS, cli

HEAVY = ["torch", "transformers", "openai", "modelscope", "datasets", "peft", "llamafactory", "swift",
         "stylewrap.backends.llamafactory", "stylewrap.backends.swift", "aiohttp", "gradio", "numpy"]

PROBE = """
import json, sys
from stylewrap.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="stylewrap", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {h.split('.')[0] for h in HEAVY} or m in HEAVY)))
"""


def _help_imports(args: list[str]) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n" + PROBE
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out.strip().splitlines()[-1]) if m in HEAVY or m.split(".")[0] in HEAVY]


def test_top_level_help_imports_nothing_heavy():
    assert _help_imports(["--help"]) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_imports_nothing_heavy(name):
    assert _help_imports([name, "--help"]) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = cli.get_command(None, name)
    assert command is not None and (command.help or "").strip(), f"{name} has no help text"
    for sub in getattr(command, "commands", {}).values():
        sub_result = CliRunner().invoke(cli, [name, sub.name, "--help"])
        assert sub_result.exit_code == 0, sub_result.output
        assert (sub.help or "").strip(), f"{name} {sub.name} has no help text"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output
