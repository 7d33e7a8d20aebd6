"""The `Backend` protocol, the registry, and the one table-driven implementation both backends share.

A backend *builds* things: rendered config files and `Invocation(argv, env, cwd)` objects;
`stylewrap.runner` runs them. Everything a backend differs in is a class attribute (program name,
subcommands, log file and its field names, dataset format, launcher env) or a row of
`stylewrap.backends.flags`; `llamafactory.py` and `swift.py` only fill those in.

Registry: entry-point group `stylewrap.backends` (the built-ins are registered there too, in
pyproject.toml), plus `register_backend` for code that builds one at runtime.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, runtime_checkable

from stylewrap.backends import flags
from stylewrap.errors import BackendNotInstalled, ConfigError, InputError, Location
from stylewrap.runner import Invocation

if TYPE_CHECKING:
    from stylewrap.serve.deploy import ServeRecipe

ENTRY_POINT_GROUP = "stylewrap.backends"
CONFIG_DIR = "config"        # inside a run directory
OUTPUT_DIR = "output"


@dataclass(frozen=True)
class Launch:
    """How many processes: 1 (plain), N GPUs on one node, or several nodes (torchrun underneath)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    def env(self) -> dict[str, str]:
        """The variables both launchers read (llamafactory's launcher.py, swift's cli/main.py)."""
        if not self.distributed:
            return {}
        env = {"NPROC_PER_NODE": str(self.nproc_per_node), "NNODES": str(self.nnodes),
               "NODE_RANK": str(self.node_rank)}
        if self.master_addr:
            env["MASTER_ADDR"] = self.master_addr
        if self.master_port:
            env["MASTER_PORT"] = str(self.master_port)
        return env


@dataclass(frozen=True)
class LogFields:
    """Where a backend's per-step JSONL log keeps each number."""

    loss: str
    lr: str
    eta: str
    step: str | None = None
    total: str | None = None
    step_of_total: str | None = None   # "12/300" in one field


@dataclass
class Progress:
    step: int
    total: int | None
    loss: float | None
    lr: float | None
    eta: str | None

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "total": self.total, "loss": self.loss, "lr": self.lr, "eta": self.eta}


@runtime_checkable
class Backend(Protocol):
    """What stylewrap needs from a training backend. Implementations build, never run."""

    name: str
    env_name: str

    def train_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]: ...
    def export_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]: ...
    def infer_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]: ...
    def train_invocation(self, run_dir: Path, config_file: str, launch: Launch) -> Invocation: ...
    def export_invocation(self, run_dir: Path, config_file: str) -> Invocation: ...
    def infer_invocation(self, run_dir: Path, config_file: str) -> Invocation: ...
    def deploy_invocation(self, run_dir: Path, options: Mapping[str, Any]) -> Invocation: ...
    def dataset_options(self, data_dir: str, name: str) -> dict[str, Any]: ...
    def register_dataset(self, records, data_dir: Path, name: str) -> int: ...
    def write_registration(self, data_dir: Path, name: str, path: Path, fmt: str | None = None, *,
                           force: bool = True) -> Path: ...
    def read_progress(self, record: Mapping[str, Any]) -> Progress | None: ...
    def version(self) -> str | None: ...
    def known_keys(self, command: str) -> set[str] | None: ...


class TableBackend:
    """A backend defined by data. Subclasses set the class attributes below and nothing else,
    unless a step truly differs (dataset registration)."""

    name: ClassVar[str]
    env_name: ClassVar[str]
    program: ClassVar[str]
    distribution: ClassVar[str]                      # pip name, for the version
    subcommands: ClassVar[dict[str, tuple[str, ...]]]   # train / export / infer -> argv after program
    launcher_env: ClassVar[dict[str, str]] = {}      # extra env when distributed
    log_file: ClassVar[str]
    log_fields: ClassVar[LogFields]
    data_format: ClassVar[str]                       # adapters format the training file is written in
    data_suffix: ClassVar[str]
    # what to tell a person who registered a dataset by hand ({dataset_dir}, {info}, {name})
    registration_hint: ClassVar[str]
    dataset_location: ClassVar[dict[str, str]]      # unified option -> "{data_dir}/..." template
    # the Python classes whose fields are every key a command accepts, for `known_keys`
    argument_classes: ClassVar[dict[str, tuple[str, ...]]]
    export_flags: ClassVar[dict[str, flags.Flag | None]]
    export_constants: ClassVar[dict[str, Any]]
    infer_flags: ClassVar[dict[str, flags.Flag | None]]
    infer_constants: ClassVar[dict[str, Any]]
    serve_recipe: ClassVar[ServeRecipe | None] = None      # how `stylewrap deploy` starts its server

    def __init__(self, env_dir: Path | None = None, executable: Path | None = None):
        self.env_dir = env_dir
        self.executable = executable

    # ------------------------------------------------------------ configs

    def train_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return flags.translate(self.name, options)

    def export_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {"export": _apply(self.export_flags, options, self.export_constants, self.name)}

    def infer_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {"infer": _apply(self.infer_flags, options, self.infer_constants, self.name)}

    # ------------------------------------------------------------ invocations

    def program_path(self) -> Path:
        if self.executable is not None:
            return self.executable
        if self.env_dir is None:
            return Path(self.program)
        return self.env_dir / "bin" / self.program

    def require_installed(self) -> Path:
        program = self.program_path()
        if not program.exists():
            raise BackendNotInstalled(
                f"{self.name} is not installed ({program} is missing)",
                hint=f"run `stylewrap backend install {self.name}` or set backends.{self.name}.venv",
            )
        return program

    def base_env(self) -> dict[str, str]:
        import os

        env = {"PYTHONUNBUFFERED": "1"}
        program = self.program_path()
        if program.is_absolute():
            # llamafactory starts `torchrun` by name: the env's bin must come first on PATH
            env["PATH"] = f"{program.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return env

    def invocation(self, command: str, run_dir: Path, config_file: str, extra_env: Mapping[str, str] = ()) -> Invocation:
        argv = [str(self.program_path()), *self.subcommands[command], config_file]
        return Invocation(argv=argv, env={**self.base_env(), **dict(extra_env)}, cwd=Path(run_dir))

    def train_invocation(self, run_dir: Path, config_file: str, launch: Launch) -> Invocation:
        extra = {**launch.env(), **(self.launcher_env if launch.distributed else {})}
        return self.invocation("train", run_dir, config_file, extra)

    def export_invocation(self, run_dir: Path, config_file: str) -> Invocation:
        return self.invocation("export", run_dir, config_file)

    def infer_invocation(self, run_dir: Path, config_file: str) -> Invocation:
        return self.invocation("infer", run_dir, config_file)

    def deploy_invocation(self, run_dir: Path, options: Mapping[str, Any]) -> Invocation:
        """The backend's own OpenAI-compatible server, from `serve_recipe` (see stylewrap.deploy)."""
        from stylewrap.serve.deploy import server_invocation

        return server_invocation(self, options)

    def display_command(self, command: str, config_file: str, launch: Launch | None = None) -> str:
        """The command as a person types it inside the run directory (for config headers)."""
        env = {**launch.env(), **self.launcher_env} if launch and launch.distributed else {}
        prefix = " ".join(f"{k}={v}" for k, v in env.items())
        line = shlex.join([self.program, *self.subcommands[command], config_file])
        return f"{prefix} {line}" if prefix else line

    # ------------------------------------------------------------ data

    def dataset_options(self, data_dir: str, name: str) -> dict[str, Any]:
        """The unified options that point the backend at dataset `name` registered in `data_dir`
        (relative to the run directory)."""
        return {"dataset": name, **{key: value.format(data_dir=data_dir) for key, value in self.dataset_location.items()}}

    def register_dataset(self, records, data_dir: Path, name: str) -> int:
        """Write `records` in this backend's preferred format under `data_dir` and register them."""
        from stylewrap.adapters import write_records

        path = Path(data_dir) / f"{name}{self.data_suffix}"
        rows = write_records(records, path, self.data_format)
        self.write_registration(Path(data_dir), name, path, self.data_format)
        return rows

    def write_registration(self, data_dir: Path, name: str, path: Path, fmt: str | None = None, *,
                           force: bool = True) -> Path:
        """Merge `name` -> `path` (in `fmt`, detected when None) into the backend's registry file in
        `data_dir`, atomically; the registry file."""
        raise NotImplementedError

    # ------------------------------------------------------------ logs and outputs

    def read_progress(self, record: Mapping[str, Any]) -> Progress | None:
        fields = self.log_fields
        if fields.loss not in record:
            return None
        if fields.step_of_total:
            raw = str(record.get(fields.step_of_total, ""))
            step_text, _, total_text = raw.partition("/")
        else:
            step_text, total_text = record.get(fields.step, ""), record.get(fields.total, "")
        try:
            step = int(step_text)
        except (TypeError, ValueError):
            return None
        total = int(total_text) if str(total_text).isdigit() else None
        return Progress(step=step, total=total, loss=_number(record.get(fields.loss)),
                        lr=_number(record.get(fields.lr)), eta=record.get(fields.eta))

    # ------------------------------------------------------------ the installed backend

    def site_packages(self) -> Path | None:
        if self.env_dir is None:
            return None
        found = sorted(self.env_dir.glob("lib/python*/site-packages"))
        return found[0] if found else None

    def installed(self) -> dict[str, str]:
        """Normalized name -> version of every distribution in the backend's env (empty when unknown).

        Read from the `NAME-VERSION.dist-info` folder names, as pip writes them: parsing each
        distribution's METADATA instead costs ~0.2 s per env, on every `train`."""
        site = self.site_packages()
        if site is None:
            return {}
        found = {}
        for folder in site.glob("*.dist-info"):
            name, _, version = folder.name[: -len(".dist-info")].partition("-")
            found[_normalized(name)] = version
        return found

    def version(self) -> str | None:
        return self.installed().get(_normalized(self.distribution))

    def python(self) -> Path | None:
        if self.env_dir is None:
            return None
        python = self.env_dir / "bin" / "python"
        return python if python.exists() else None

    def known_keys(self, command: str) -> set[str] | None:
        """Every key `command` accepts, read from the installed backend's argument dataclasses
        (cached per version); None when the backend is not installed."""
        return known_keys(self, command)


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _apply(table: Mapping[str, flags.Flag | None], options: Mapping[str, Any], constants: Mapping[str, Any],
           backend: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for option, value in options.items():
        if value is None:
            continue
        flag = table.get(option)
        if flag is None:
            raise ConfigError(f"{backend} has no equivalent option", location=Location(field=option))
        out.update(flag.translate(option, value))
    for key, value in constants.items():
        out.setdefault(key, value)
    return out


# ---------------------------------------------------------------- known keys

_KEYS_SCRIPT = """
import dataclasses, importlib, json, sys
names = set()
for spec in sys.argv[1:]:
    module, _, attr = spec.rpartition(".")
    names.update(f.name for f in dataclasses.fields(getattr(importlib.import_module(module), attr)))
print(json.dumps(sorted(names)))
"""


def known_keys(backend: TableBackend, command: str) -> set[str] | None:
    import subprocess

    from stylewrap.fsutil import atomic_write_json

    python, version = backend.python(), backend.version()
    if python is None or version is None:
        return None
    cache = Path("~/.cache/stylewrap/known-keys").expanduser() / f"{backend.name}-{version}-{command}.json"
    if cache.is_file():
        return set(json.loads(cache.read_text(encoding="utf-8")))
    # the one subprocess outside runner.run: a read-only query, its output is data, not a log
    proc = subprocess.run([str(python), "-c", _KEYS_SCRIPT, *backend.argument_classes[command]],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    atomic_write_json(cache, names, indent=None)
    return set(names)


def check_keys(backend: TableBackend, command: str, sections: Mapping[str, Mapping[str, Any]], source: str) -> None:
    """Both backends stop on an unknown key, after loading for a while; stylewrap stops first."""
    import difflib

    keys = backend.known_keys(command)
    if keys is None:
        return
    for section in sections.values():
        for key in section:
            if key not in keys:
                close = difflib.get_close_matches(key, sorted(keys), n=1)
                raise ConfigError(f"{backend.name} {command} does not accept {key!r}", location=Location(source, field=key),
                                  hint=f"did you mean {close[0]!r}?" if close else None)


# ---------------------------------------------------------------- registry

_RUNTIME: dict[str, Callable[..., TableBackend]] = {}


def register_backend(name: str, factory: Callable[..., TableBackend]) -> None:
    _RUNTIME[name] = factory


def backend_factories() -> dict[str, Callable[..., TableBackend]]:
    found = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    factories: dict[str, Callable[..., TableBackend]] = {name: _lazy(ep) for name, ep in found.items()}
    factories.update(_RUNTIME)
    return factories


def _lazy(entry_point: metadata.EntryPoint) -> Callable[..., TableBackend]:
    def load(*args, **kwargs):
        return entry_point.load()(*args, **kwargs)

    return load


def available_backends() -> list[str]:
    return sorted(backend_factories())


def get_backend(name: str, config=None) -> TableBackend:
    """The backend `name`, pointed at its environment (managed, or the user's venv/executable)."""
    from stylewrap.backends.envs import env_dir

    factories = backend_factories()
    if name not in factories:
        raise InputError(f"unknown backend {name!r}", location=Location(field="train.backend"),
                         hint=f"one of {', '.join(sorted(factories)) or '(none registered)'}")
    executable = None
    if config is not None:
        own = getattr(config.backends, name, None)
        if own is not None and own.executable:
            executable = Path(own.executable).expanduser()
    known_to_config = config is not None and hasattr(config.backends, name)
    return factories[name](env_dir=env_dir(name, config if known_to_config else None), executable=executable)
