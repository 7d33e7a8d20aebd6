"""Each backend's own virtual environment: where it lives, what it is pinned to.

llamafactory and ms-swift pin incompatible transformers/datasets versions, so each gets its own venv
under `envs_dir/<name>` (default ~/.cache/stylewrap/envs; override with STYLEWRAP_ENVS_DIR or
`backends.envs_dir`). A user who already has the program points `backends.<name>.executable` or
`backends.<name>.venv` at it instead.

Managed envs are installed (`envinstall`) from the pinned requirements each backend unit names in
its `EnvSpec` (the built-ins ship theirs in `templates/envs/<name>.txt`), torch pinned by the shared
`constraints-cpu.txt` / `constraints-gpu.txt`, and carry an `env.json` recording what they were
built from; `envcheck` diagnoses and lists them. What differs between backends is their `EnvSpec`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stylewrap.backends.registry import backend_class
from stylewrap.config import StylewrapConfig
from stylewrap.errors import ConfigError, Location
from stylewrap.runner import python_of_venv

if TYPE_CHECKING:
    from stylewrap.backends.base import TableBackend

    Backend = type[TableBackend]

ENVS_DIR_VAR = "STYLEWRAP_ENVS_DIR"
DEFAULT_ENVS_DIR = Path("~/.cache/stylewrap/envs")
ENV_RECORD = "env.json"
# present while `install` is writing the env: a crash leaves it behind and the env counts as absent
INSTALLING_MARKER = ".stylewrap-installing"


# ---------------------------------------------------------------- locations


def envs_dir(config: StylewrapConfig | None = None) -> Path:
    if os.environ.get(ENVS_DIR_VAR):
        return Path(os.environ[ENVS_DIR_VAR]).expanduser()
    if config is not None and config.backends.envs_dir:
        return Path(config.backends.envs_dir).expanduser()
    return DEFAULT_ENVS_DIR.expanduser()


def own_venv(name: str, config: StylewrapConfig | None) -> Path | None:
    """The user's own venv for backend `name` (`backends.<name>.venv`), if configured."""
    if config is None:
        return None
    own = config.backends.of(name).venv
    return Path(own).expanduser() if own else None


def env_dir(name: str, config: StylewrapConfig | None = None) -> Path:
    """The venv folder for backend `name`: the user's own venv if configured, else the managed one."""
    return own_venv(name, config) or envs_dir(config) / name


def env_python(name: str, config: StylewrapConfig | None = None) -> Path | None:
    """The python of backend `name`'s environment, or None when it is not (completely) installed."""
    folder = env_dir(name, config)
    python = python_of_venv(folder)
    return python if python.exists() and not (folder / INSTALLING_MARKER).exists() else None


def resolve_executable(configured: str) -> Path:
    """`backends.<name>.executable` as a path: a bare name is looked up on PATH (as a shell
    would), a path has `~` expanded. Missing programs keep their path, for the error to name."""
    expanded = os.path.expanduser(configured)
    found = shutil.which(expanded)
    return Path(found) if found else Path(expanded)


def python_of_executable(executable: Path) -> Path | None:
    """The interpreter in a console script's `#!` line (how pip-installed CLIs start)."""
    try:
        with open(executable, "rb") as handle:
            first = handle.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    candidate = Path(first[2:].strip().split()[0])
    return candidate if "python" in candidate.name and candidate.exists() else None


def configured_executable(name: str, config: StylewrapConfig | None) -> str | None:
    """`backends.<name>.executable` as written in the config, if set."""
    return config.backends.of(name).executable if config is not None else None


def backend_executable(name: str, config: StylewrapConfig | None = None) -> Path | None:
    """The backend's CLI, when it exists: `backends.<name>.executable` if set (found the way
    `get_backend` finds it), else the one in its environment."""
    configured = configured_executable(name, config)
    if configured:
        executable = resolve_executable(configured)
        return executable if executable.exists() else None
    if env_python(name, config) is None:
        return None
    executable = python_of_venv(env_dir(name, config)).parent / backend_class(name).program
    return executable if executable.exists() else None


# ---------------------------------------------------------------- pins


def shipped_file(name: str) -> Path:
    return Path(str(resources.files("stylewrap.templates") / "envs" / name))


def constraints_file(gpu: bool) -> Path:
    return shipped_file("constraints-gpu.txt" if gpu else "constraints-cpu.txt")


# optional parts of a managed env, `stylewrap backend install NAME --<extra>`: extra -> pins file
EXTRAS = {"deepspeed": "extra-deepspeed.txt", "webui": "extra-webui.txt",
          # experiment trackers (`train.report_to`), `--with TRACKER`
          "swanlab": "extra-swanlab.txt", "tensorboard": "extra-tensorboard.txt", "wandb": "extra-wandb.txt",
          "mlflow": "extra-mlflow.txt"}


def extra_files(extras: Iterable[str]) -> list[Path]:
    return [shipped_file(EXTRAS[extra]) for extra in sorted(set(extras))]


def requirement_files(backend: Backend, gpu: bool) -> list[Path]:
    """The backend's pins, plus on GPUs the kernels stylewrap's GPU defaults use (Liger)."""
    return [backend.env.requirements, *([shipped_file("gpu-extras.txt")] if gpu else [])]


def canonical_name(name: str) -> str:
    """PEP 503 normalized distribution name: `Jinja2`, `typing_extensions` -> `jinja2`, `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(===|==)\s*([A-Za-z0-9.+!_-]+)$")


def parse_pins(text: str, source: str | Path) -> dict[str, str]:
    """`name==version` lines of a requirement/constraints file -> {canonical name: version}.

    Comments, blank lines and pip options (`-r`, `--extra-index-url`) are skipped; anything else
    that is not an exact pin is an error with file:line, because these files must be reproducible.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue
        match = PIN_LINE.match(line)
        if not match:
            raise ConfigError(
                f"not an exact pin: {line!r}", location=Location(source, number), hint="write name==version"
            )
        name = canonical_name(match.group(1))
        if name in pins:
            raise ConfigError(f"{name} is pinned twice", location=Location(source, number))
        pins[name] = match.group(3)
    return pins


def read_pins(path: Path) -> dict[str, str]:
    return parse_pins(path.read_text(encoding="utf-8"), path)


def pins_for(backend: Backend, gpu: bool) -> dict[str, str]:
    pins = {}
    for path in (*requirement_files(backend, gpu), constraints_file(gpu)):
        pins.update(read_pins(path))
    return pins


def version_matches(installed: str, pinned: str) -> bool:
    """2.13.0+cpu satisfies a 2.13.0 pin (PEP 440 ignores the local label for ==)."""
    return installed == pinned or installed.split("+", 1)[0] == pinned


def requirements_hash(backend: Backend, gpu: bool) -> str:
    digest = hashlib.sha256()
    for path in (*requirement_files(backend, gpu), constraints_file(gpu)):
        digest.update(path.read_bytes())
    digest.update(repr((backend.env.cpu_removals, backend.env.cpu_strip_native) if not gpu else ()).encode())
    return digest.hexdigest()


def read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ENV_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
