"""The one place that starts a process.

A backend *builds* an `Invocation`; this module runs it: no shell, output streamed line by line
(to the terminal, a log file and an optional callback), secrets scrubbed from what is logged,
`dry_run` prints the argv and env instead of running anything.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TextIO

from stylewrap.secrets import redact, redact_env


@dataclass
class Invocation:
    """A process to start: argv, the environment *changes* on top of os.environ, a cwd."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # environment variables to remove from the inherited environment
    unset_env: tuple[str, ...] = ()

    def full_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        merged = dict(os.environ if base is None else base)
        for name in self.unset_env:
            merged.pop(name, None)
        merged.update(self.env)
        return merged

    def shell_line(self) -> str:
        """The command as a person would type it, env changes first, secrets redacted."""
        env_part = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(redact_env(self.env).items()))
        cmd = shlex.join(self.argv)
        line = f"{env_part} {cmd}" if env_part else cmd
        if self.cwd:
            line = f"cd {shlex.quote(str(self.cwd))} && {line}"
        return redact(line)


@dataclass
class RunResult:
    returncode: int
    tail: list[str]
    log_file: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def script_invocation(python: Path, script: Path, *args: str, env: Mapping[str, str] | None = None,
                      cwd: Path | None = None) -> Invocation:
    """The one way a stylewrap helper script runs in a foreign python (a backend's environment,
    where stylewrap itself is not installed); the script imports only the standard library and
    that environment's packages.

    Run as `python script.py`, the script's folder would come first on sys.path, and stylewrap's
    own modules there (`secrets.py`, the `swift` backend) would shadow the standard library or the
    backend. `runpy.run_path` runs the file without touching sys.path; `-I` keeps PYTHON* variables
    and the user's site-packages out.
    """
    launcher = 'import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")'
    return Invocation([str(python), "-I", "-c", launcher, str(script), *args], env=dict(env or {}), cwd=cwd)


def describe(inv: Invocation) -> str:
    """What `--dry-run` prints."""
    lines = [f"$ {inv.shell_line()}"]
    if inv.env:
        lines.append("env:")
        lines.extend(f"  {k}={v}" for k, v in sorted(redact_env(inv.env).items()))
    if inv.cwd:
        lines.append(f"cwd: {inv.cwd}")
    return "\n".join(lines)


def run(
    inv: Invocation,
    *,
    log_file: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    echo: TextIO | None = None,
    tail_lines: int = 40,
    new_session: bool = False,
) -> RunResult:
    """Run `inv` to completion, streaming merged stdout/stderr.

    `echo` receives every line (pass None to keep the terminal quiet, e.g. when a progress bar
    shows progress instead); the log file gets every line redacted; the last `tail_lines` lines come
    back in the result so a failure can be reported with the backend's own words.
    """
    env = inv.full_env()
    tail: deque[str] = deque(maxlen=tail_lines)
    log_handle = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_handle = open(log_file, "a", encoding="utf-8")
        log_handle.write(f"$ {inv.shell_line()}\n")
        log_handle.flush()
    try:
        proc = subprocess.Popen(
            inv.argv,
            env=env,
            cwd=str(inv.cwd) if inv.cwd else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=new_session,
        )
    except FileNotFoundError as exc:
        if log_handle:
            log_handle.close()
        from stylewrap.errors import RunFailed

        raise RunFailed(f"cannot start {inv.argv[0]!r}: {exc.strerror}") from None
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = redact(raw.rstrip("\n"))
            tail.append(line)
            if log_handle:
                log_handle.write(line + "\n")
                log_handle.flush()
            if echo is not None:
                echo.write(line + "\n")
                echo.flush()
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    except KeyboardInterrupt:
        _terminate(proc, new_session)
        raise
    finally:
        if log_handle:
            log_handle.close()
    return RunResult(returncode=returncode, tail=list(tail), log_file=log_file)


def _terminate(proc: subprocess.Popen, whole_group: bool) -> None:
    try:
        if whole_group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            if whole_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass


def query(argv: list[str], *, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """A short command whose output is data, not a log (a scheduler's sbatch, squeue, sacct, scancel):
    captured, never echoed; a missing program or a hang is a non-zero return code with the reason."""
    try:
        return subprocess.run(argv, cwd=str(cwd) if cwd else None, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: not found on PATH")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]}: no answer in {timeout:g} s")


def python_of_venv(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def spawn(inv: Invocation, *, log_file: Path) -> subprocess.Popen:
    """Start `inv` in the background, in its own session, all output appended to `log_file`.

    For servers: the new session makes the process the leader of its own process group, so the whole
    tree can be stopped by that one PID, and Ctrl-C in the terminal that started it does not reach it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8") as handle:
        handle.write(f"$ {inv.shell_line()}\n")
        handle.flush()
        try:
            return subprocess.Popen(
                inv.argv,
                env=inv.full_env(),
                cwd=str(inv.cwd) if inv.cwd else None,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            from stylewrap.errors import RunFailed

            raise RunFailed(f"cannot start {inv.argv[0]!r}: {exc.strerror}") from None
