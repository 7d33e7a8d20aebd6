"""Run the installed `stylewrap` console script in a subprocess, as a user's shell does.

Exit codes and output are what `main()` makes of a command, which CliRunner never runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# the console script pip installed next to the interpreter running the tests
STYLEWRAP = Path(sys.executable).with_name("stylewrap")


def environment(changes: dict[str, str | None] | None) -> dict[str, str]:
    environ = {**os.environ, "STYLEWRAP_DEBUG": ""}
    for name, value in (changes or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return environ


def run_stylewrap(*args: str | os.PathLike, cwd: str | os.PathLike, env: dict[str, str] | None = None,
                  input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`stylewrap ARGS` in `cwd`; `env` entries are added to (None values removed from) the environment."""
    return subprocess.run([str(STYLEWRAP), *map(str, args)], cwd=cwd, env=environment(env), input=input, capture_output=True,
                          text=True, timeout=timeout)


def start_stylewrap(*args: str | os.PathLike, cwd: str | os.PathLike, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`stylewrap ARGS` left running (a server); stdout and stderr are pipes. Stop it by its PID."""
    return subprocess.Popen([str(STYLEWRAP), *map(str, args)], cwd=cwd, env=environment(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
