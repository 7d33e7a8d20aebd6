"""Project scaffolding (`stylewrap init`)."""

from __future__ import annotations

from pathlib import Path

from stylewrap.config import CONFIG_FILENAME, commented_yaml
from stylewrap.errors import InputError, Location
from stylewrap.fsutil import atomic_write_text


def init_project(directory: Path, *, force: bool = False) -> Path:
    target = directory / CONFIG_FILENAME
    if target.exists() and not force:
        raise InputError("already exists", location=Location(target), hint="pass --force to overwrite")
    return atomic_write_text(target, commented_yaml())
