"""One backend step after training (export, inference): render its YAML into the run directory,
run the backend's program quietly into a log, and fail with the backend's own last words."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping

from stylewrap.backends.base import CONFIG_DIR, TableBackend
from stylewrap.backends.render import render
from stylewrap.errors import RunFailed
from stylewrap.fsutil import atomic_write_text
from stylewrap.runner import Invocation, run


def error_lines(tail: list[str], limit: int = 12) -> list[str]:
    """The backend's own explanation: from its last traceback on, else the last lines."""
    starts = [i for i, line in enumerate(tail) if line.startswith("Traceback") or "Error" in line]
    picked = tail[starts[0]:] if starts else tail
    return [line for line in picked if line.strip()][-limit:]


def failure(backend: str, what: str, returncode: int, log_file: Path, tail: list[str]) -> RunFailed:
    detail = "\n".join(error_lines(tail))
    return RunFailed(f"{backend} {what} failed (exit {returncode}); full log: {log_file}\n{detail}")


def render_step_config(backend: TableBackend, name: str, template: str, title: str,
                       sections: Mapping[str, Mapping[str, Any]], invocation: Invocation) -> tuple[str, str]:
    """(`config/<name>.yaml`, its text): the YAML a step's invocation reads."""
    relative = f"{CONFIG_DIR}/{name}.yaml"
    shown = shlex.join(Path(arg).name if i == 0 else arg for i, arg in enumerate(invocation.argv))
    return relative, render(template, title=title, backend=backend.name, command=shown, sections=sections)


def config_path(name: str) -> str:
    return f"{CONFIG_DIR}/{name}.yaml"


def run_step(backend: TableBackend, invocation: Invocation, files: Mapping[str, str], log_file: Path, what: str,
             status=None) -> None:
    """Write `files` (relative to the invocation's cwd) and run quietly: the log gets everything;
    `status` is a rich Status-like context manager shown meanwhile."""
    backend.require_installed()
    for relative, text in files.items():
        atomic_write_text(Path(invocation.cwd) / relative, text)
    if status is not None:
        with status:
            result = run(invocation, log_file=log_file, new_session=True)
    else:
        result = run(invocation, log_file=log_file, new_session=True)
    if not result.ok:
        raise failure(backend.name, what, result.returncode, log_file, result.tail)
