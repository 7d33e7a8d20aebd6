"""`stylewrap --help` stays fast: no heavy import, every command documented, every command loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from stylewrap.cli import COMMANDS, cli

HEAVY = ["torch", "transformers", "openai", "modelscope", "datasets", "peft", "llamafactory", "swift",
         "stylewrap.backends.llamafactory", "stylewrap.backends.swift", "aiohttp", "gradio", "numpy",
         "sklearn", "sacrebleu", "matplotlib", "scipy"]

PROBE = """
import json, sys
from stylewrap.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="stylewrap", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {h.split('.')[0] for h in HEAVY} or m in HEAVY)))
"""


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under `command` (itself included), as the words that invoke it."""
    paths = [path] if path else []
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            paths += command_paths(command.get_command(click.Context(command), name), (*path, name))
    return paths


ALL_COMMANDS = command_paths(cli)


def _help_imports(args: list[str]) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n" + PROBE
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out.strip().splitlines()[-1]) if m in HEAVY or m.split(".")[0] in HEAVY]


def test_the_walk_reaches_every_group_and_its_subcommands():
    assert {path[0] for path in ALL_COMMANDS} == set(COMMANDS)
    for group, sub in [("data", "validate"), ("datagen", "run"), ("deploy", "stop"), ("config", "show")]:
        assert (group, sub) in ALL_COMMANDS


def test_top_level_help_imports_nothing_heavy():
    assert _help_imports(["--help"]) == []


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_command_help_imports_nothing_heavy(path):
    assert _help_imports([*path, "--help"]) == []


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {' '.join(path)}" in result.output
    command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_a_command_that_cannot_load_is_a_broken_install_not_a_typo():
    """The `data` commands need stylewrap.adapters; without it the error names what failed."""
    code = ("import sys; sys.modules['stylewrap.adapters'] = None\n"
            "from stylewrap.cli import main; sys.argv = ['stylewrap', *sys.argv[1:]]; main()")
    broken = subprocess.run([sys.executable, "-c", code, "data", "formats"], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    [line] = broken.stderr.splitlines()
    assert "No such command" not in line and "Traceback" not in line
    assert line.startswith("Error: the 'data' command cannot load: stylewrap.cli.data_cmd: ModuleNotFoundError: ")
    assert "stylewrap.adapters" in line
    debug = subprocess.run([sys.executable, "-c", code, "data", "formats"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "STYLEWRAP_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "stylewrap/cli/data_cmd.py" in debug.stderr
