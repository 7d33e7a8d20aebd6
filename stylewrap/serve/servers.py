"""A background server process: start, wait until it answers, find it again, stop it by PID.

Each server gets a record (JSON, next to its log) in the state folder, keyed by port. The process is
started in its own session, so its PID is also its process-group id: `stop` signals exactly that
group, and the record keeps the process start time so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_json
from stylewrap.runner import Invocation, spawn

log = logging.getLogger("stylewrap.serve")

STATE_DIR_VAR = "STYLEWRAP_STATE_DIR"
DEFAULT_STATE_DIR = Path("~/.cache/stylewrap/servers")


@dataclass
class ServerRecord:
    pid: int
    host: str
    port: int
    backend: str
    models: list[str]                  # served model names, the tuned one first
    log_file: str
    command: str                       # the shell line that started it, secrets redacted
    api_key_env: str | None = None     # the env var holding the key (never the key)
    started_at: float = field(default_factory=time.time)
    start_ticks: int | None = None     # /proc start time: tells our process from a recycled PID
    # "tuned" / "base" per model; [] for a model served without a run or adapter (how it was trained
    # is unknown); None in a record written before roles were kept (then by position)
    roles: list[str] | None = None

    def model_roles(self) -> dict[str, str]:
        """model -> "tuned" | "base", for the models whose role is known."""
        return dict(zip(self.models, ["tuned", "base"] if self.roles is None else self.roles))

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str, what: str, guarded_by: str) -> None:
    """A line on stderr when `host` is more than this machine: every machine that reaches it can connect."""
    if not is_loopback(host):
        log.warning("warning: %s listens on %s: every machine that can reach this one can connect; %s",
                    what, host, guarded_by)


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_VAR) or DEFAULT_STATE_DIR).expanduser()


def record_path(port: int) -> Path:
    return state_dir() / f"server-{port}.json"


def log_path(port: int) -> Path:
    return state_dir() / f"server-{port}.log"


# ---------------------------------------------------------------- ports


def check_port_free(host: str, port: int) -> None:
    """Raise InputError when host:port cannot be bound (another server, or our own, holds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # as uvicorn does: connections of a stopped server lingering in TIME_WAIT do not block the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            owner = load_record(port)
            hint = (f"stylewrap server PID {owner.pid} holds it: `stylewrap deploy stop --port {port}`"
                    if owner and is_running(owner) else "choose another with --port")
            raise InputError(f"port {port} on {host} is busy ({exc.strerror})", hint=hint) from None


# ---------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; everything after its closing paren is fixed
    return text[text.rindex(")") + 2:].split()


def _start_ticks(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie serves nothing; it awaits its parent)."""
    fields = _proc_stat(pid)
    if fields is not None:
        return fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path("/proc").is_dir()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) PIDs in process group `pgid`; on systems without /proc, the leader if alive."""
    proc = Path("/proc")
    if not proc.is_dir():
        return [pgid] if pid_alive(pgid) else []
    members = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def is_running(record: ServerRecord) -> bool:
    """The recorded server itself is alive: the PID is alive, started when the record says, and
    leads its own process group (stylewrap starts every server in its own session). A record that
    cannot prove all three (an old or edited one) never gets a process signalled."""
    ticks_known = Path("/proc").is_dir()  # elsewhere no start time is ever recorded
    if (ticks_known and record.start_ticks is None) or not pid_alive(record.pid):
        return False
    try:
        leads_its_group = os.getpgid(record.pid) == record.pid
    except ProcessLookupError:
        return False
    return leads_its_group and (not ticks_known or _start_ticks(record.pid) == record.start_ticks)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# ---------------------------------------------------------------- records


def save_record(record: ServerRecord) -> Path:
    return atomic_write_json(record_path(record.port), asdict(record))


def load_record(port: int) -> ServerRecord | None:
    path = record_path(port)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        # a record written by a newer stylewrap may carry fields this one does not know: they are left out
        known = {each.name for each in fields(ServerRecord)}
        return ServerRecord(**{key: value for key, value in stored.items() if key in known})
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise InputError(f"unreadable server record: {exc}", location=Location(path), hint="delete it") from None


def all_records() -> list[ServerRecord]:
    folder = state_dir()
    if not folder.is_dir():
        return []
    ports = sorted(int(p.stem.split("-", 1)[1]) for p in folder.glob("server-*.json") if p.stem.split("-", 1)[1].isdigit())
    return [r for r in (load_record(port) for port in ports) if r is not None]


def find_record(port: int | None) -> ServerRecord:
    """The record for `port`, or the only one there is."""
    if port is not None:
        record = load_record(port)
        if record is None:
            raise InputError(f"no stylewrap server recorded on port {port}", hint="see `stylewrap deploy status`")
        return record
    records = all_records()
    if not records:
        raise InputError("no stylewrap server is recorded", hint="start one with `stylewrap deploy`")
    if len(records) > 1:
        ports = ", ".join(str(r.port) for r in records)
        raise InputError(f"several servers are recorded (ports {ports})", hint="pick one with --port")
    return records[0]


# ---------------------------------------------------------------- start / wait / stop


def tail(path: str | Path, lines: int = 30) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except FileNotFoundError:
        return []


def probe(record: ServerRecord, timeout: float = 2.0) -> tuple[bool, str]:
    """(answers, detail): GET /v1/models with the key the server expects."""
    request = urllib.request.Request(f"{record.base_url}/models")
    key = os.environ.get(record.api_key_env) if record.api_key_env else None
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ids = [m.get("id") for m in json.loads(response.read()).get("data", [])]
            return True, f"models: {', '.join(map(str, ids))}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))


def start(inv: Invocation, record: ServerRecord, *, startup_timeout: float) -> ServerRecord:
    """Start the server, wait until /v1/models answers; on death or timeout stop it and report its log."""
    check_port_free(record.host, record.port)
    log_file = Path(record.log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("", encoding="utf-8")
    process = spawn(inv, log_file=log_file)
    record.pid = process.pid
    record.start_ticks = _start_ticks(process.pid)
    save_record(record)
    deadline = time.monotonic() + startup_timeout
    try:
        while not probe(record)[0]:
            if process.poll() is not None:
                raise RunFailed(died_message(record, f"server exited with code {process.returncode}"))
            if time.monotonic() > deadline:
                raise RunFailed(died_message(record, f"server did not answer within {startup_timeout:.0f}s"))
            time.sleep(0.5)
    except BaseException:
        # a failed start or a Ctrl-C while waiting leaves nothing running
        stop(record)
        raise
    return record


def died_message(record: ServerRecord, what: str) -> str:
    last = "\n".join(f"  | {line}" for line in tail(record.log_file, 15))
    return f"{what}; last lines of {record.log_file}:\n{last}"


def stop(record: ServerRecord, *, grace: float = 15.0) -> bool:
    """End the server's whole process group; True when something was running. Removes the record."""
    was_running = is_running(record)
    if was_running:
        _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_members(record.pid) and time.monotonic() < deadline:
            _reap(record.pid)
            time.sleep(0.2)
        if group_members(record.pid):
            _signal_group(record.pid, signal.SIGKILL)
            while group_members(record.pid):
                time.sleep(0.1)
    _reap(record.pid)
    path = record_path(record.port)
    if path.is_file() and load_record(record.port) == record:
        path.unlink()
    return was_running


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def follow(record: ServerRecord, on_line, *, poll: float = 0.3) -> None:
    """Pass every new log line to `on_line` until the server process ends."""
    with open(record.log_file, encoding="utf-8", errors="replace") as handle:
        handle.seek(0, os.SEEK_END)
        while True:
            line = handle.readline()
            if line:
                on_line(line.rstrip("\n"))
                continue
            if not is_running(record):
                return
            _reap(record.pid)
            time.sleep(poll)
