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


STYLEWRAP = os.path.join(os.path.dirname(sys.executable), "stylewrap")


def command_at(path: tuple[str, ...]) -> click.Command:
    command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)
    return command


def test_a_misspelt_command_gets_a_suggestion_through_the_lazy_group():
    result = subprocess.run([STYLEWRAP, "trian"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "No such command 'trian'. Did you mean 'train'?" in result.stderr
    assert "Did you mean 'convert'?" in subprocess.run([STYLEWRAP, "data", "conver"], capture_output=True,
                                                        text=True, timeout=60).stderr


def test_top_level_help_groups_every_command_by_workflow_stage():
    from stylewrap.cli.helptext import STAGES

    staged = [name for _, names in STAGES for name in names]
    assert sorted(staged) == sorted(COMMANDS), "every command in exactly one stage"
    output = subprocess.run([STYLEWRAP, "--help"], capture_output=True, text=True, timeout=60).stdout
    positions = [output.index(f"\n{title}:\n") for title, _ in STAGES]
    assert positions == sorted(positions) and "\nCommands:\n" not in output


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "stylewrap")
def test_every_command_shows_examples_that_parse(path):
    import shlex

    output = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100).output
    assert "\n  Examples:\n    $ stylewrap" in output, output
    examples = [line.split("$ ", 1)[1] for line in output.split("\n  Examples:\n", 1)[1].splitlines() if "$ " in line]
    for example in examples:
        words = shlex.split(example.split("&&")[0], comments=True)[1:]
        # each example names real commands and options: parsed (not run) by the command it names
        command, depth = cli, 0
        while isinstance(command, click.Group) and depth < len(words) and words[depth] in command.list_commands(None):
            command, depth = command.get_command(click.Context(command), words[depth]), depth + 1
        known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        unknown = [w for w in words[depth:] if w.startswith("-") and w.split("=")[0] not in known]
        assert not unknown, f"{example}: {unknown} are not options of {' '.join(words[:depth]) or 'stylewrap'}"


@pytest.mark.parametrize("path", [p for p in ALL_COMMANDS if isinstance(command_at(p), click.Group)], ids=" ".join)
def test_no_summary_is_cut_off(path):
    output = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80).output
    commands = output.split("\nCommands:\n", 1)[1].split("\n\n")[0]
    assert "..." not in commands, commands


def test_one_notation_for_defaults_and_backend_a_fixed_choice():
    from stylewrap.backends.registry import backend_names

    for path in ALL_COMMANDS:
        for param in command_at(path).params:
            text = getattr(param, "help", None) or ""
            assert "(default" not in text.lower() and "default:" not in text.replace("[default: ", ""), (path, text)
            if "--backend" in getattr(param, "opts", []):
                assert isinstance(param.type, click.Choice) and list(param.type.choices) == backend_names(), path
