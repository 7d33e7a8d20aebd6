"""Project scaffolding (`stylewrap init`)."""

from __future__ import annotations

from pathlib import Path

from stylewrap.config import CONFIG_FILENAME, commented_yaml
from stylewrap.errors import InputError, Location
from stylewrap.fsutil import atomic_write_text, new_file_mode


def init_project(directory: Path, *, force: bool = False) -> Path:
    target = directory / CONFIG_FILENAME
    if target.exists() and not force:
        raise InputError("already exists", location=Location(target), hint="pass --force to overwrite")
    # never group/other-writable: stylewrap refuses a config others could have changed
    return atomic_write_text(target, commented_yaml(), new_mode=new_file_mode(writable_by_others=False))
