"""Domain errors. Library code raises these; only `stylewrap.cli` turns them into exit codes.

Exit codes: 2 for bad input (the user can fix the file/flag), 1 for a run that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where bad input sits: file, 1-based line (when known) and a dotted field path."""

    file: str | Path | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(str(self.line))
        where = ":".join(parts)
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return where


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters (an ESC from a data file could recolour,
    retitle or clear the user's terminal) shown as escapes; tabs and line breaks kept."""
    return "".join(
        char if char.isprintable() or char in "\t\n" else (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        for char in text
    )


class StylewrapError(Exception):
    """Base of every error stylewrap reports to a user as one line."""

    exit_code = 1

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.location}: {self.message}" if self.location and str(self.location) else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class InputError(StylewrapError):
    """The user's file, flag or config is wrong; fixing it fixes the run."""

    exit_code = 2


class ConfigError(InputError):
    """stylewrap.yaml or a --set override is invalid."""


class DataError(InputError):
    """A dataset file is malformed."""


class BackendNotInstalled(InputError):
    """A backend's environment is missing; `stylewrap backend install NAME` fixes it."""


class RunFailed(StylewrapError):
    """A subprocess (training, export, server) ran and failed."""

    exit_code = 1
