"""The command reference in docs/commands.md and README.md is what the CLI's --help says now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "command_reference.py"


def load_script():
    spec = importlib.util.spec_from_file_location("command_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_commands_md_is_up_to_date():
    reference = load_script()
    assert reference.DOCS.read_text(encoding="utf-8") == reference.full_reference(), \
        "docs/commands.md is stale: run .venv/bin/python scripts/command_reference.py"


def test_readme_command_list_is_up_to_date():
    reference = load_script()
    text = reference.README.read_text(encoding="utf-8")
    assert text == reference.readme_with_list(text), "README.md's command list is stale: run scripts/command_reference.py"


def test_the_reference_holds_every_command_and_option():
    reference = load_script()
    full = reference.full_reference()
    for words, command, _ in reference.walk(reference.cli):
        assert f"## {' '.join(('stylewrap', *words))}\n" in full
        for param in command.params:
            for flag in getattr(param, "opts", []):
                if flag.startswith("-"):
                    assert flag in full, (words, flag)
