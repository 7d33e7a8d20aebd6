"""Writes the command reference from the CLI's own --help: docs/commands.md (every command's full
help) and the command list in README.md between its markers. tests/cli/test_command_reference.py
fails when either is out of date; run `.venv/bin/python scripts/command_reference.py` to refresh.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stylewrap.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "commands.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- commands:begin (scripts/command_reference.py) -->", "<!-- commands:end -->"
WIDTH = 100


def walk(command: click.Command, path: tuple[str, ...] = ()):
    """(words, command, context) for the root and every command under it, in help order."""
    parent = None
    contexts = {}
    stack = [(path, command)]
    while stack:
        words, current = stack.pop(0)
        parent = contexts.get(words[:-1])
        # the root's context settings (-h as well as --help) reach every command, as on the command line
        settings = {**(cli.context_settings if not words else {}), "terminal_width": WIDTH, "max_content_width": WIDTH}
        ctx = click.Context(current, info_name=words[-1] if words else "stylewrap", parent=parent, **settings)
        contexts[words] = ctx
        yield words, current, ctx
        if isinstance(current, click.Group):
            stack[0:0] = [((*words, name), current.get_command(ctx, name)) for name in current.list_commands(ctx)]


def full_reference() -> str:
    parts = ["# Command reference", "",
             "Generated from `stylewrap --help` and each command's `--help` by `scripts/command_reference.py`;",
             "a test fails when it is out of date.", ""]
    for words, command, ctx in walk(cli):
        title = " ".join(("stylewrap", *words))
        parts += [f"## {title}", "", "```", command.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


def command_list() -> str:
    rows = []
    for words, command, ctx in walk(cli):
        if not words or isinstance(command, click.Group):
            continue
        rows.append(f"| `stylewrap {' '.join(words)}` | {command.get_short_help_str(limit=120)} |")
    return "\n".join(["| command | what it does |", "|---|---|", *rows])


def readme_with_list(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + command_list() + "\n" + text[end:]


def main() -> int:
    DOCS.write_text(full_reference(), encoding="utf-8")
    README.write_text(readme_with_list(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOCS} and the command list in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
