"""`TableBackend`: the one implementation every backend shares, filled in by each backend unit.

A backend *builds* things: rendered config files and `Invocation(argv, env, cwd)` objects;
`stylewrap.runner` runs them. Everything a backend differs in is a class attribute of its unit
(`llamafactory/`, `swift/`): program and distribution, environment (`EnvSpec`), subcommands, log
file and its field names, dataset format and registration, one `flags.StepTable` per step, the
serve recipe. The units fill those in; nothing here names a backend.

`get_backend` is the one way to get a backend pointed at its environment: the managed one, or the
user's own `backends.<name>.venv` / `.executable`. The registry of names is `registry.py`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from stylewrap.backends import flags
from stylewrap.backends.envs import env_dir, python_of_executable, resolve_executable
from stylewrap.backends.registry import backend_class
from stylewrap.errors import BackendNotInstalled, ConfigError, InputError, Location
from stylewrap.runner import Invocation, script_invocation

if TYPE_CHECKING:
    from stylewrap.backends.serving import ServeRecipe

CONFIG_DIR = "config"        # inside a run directory
OUTPUT_DIR = "output"
DEFAULT_MASTER_PORT = 29500   # torchrun's
KEYS_SCRIPT = Path(__file__).with_name("_known_keys.py")


@dataclass(frozen=True)
class WebUI:
    """The backend's own training UI (a Gradio app): the arguments after its program and the env
    vars, "{host}"/"{port}" filled in, that bind it where stylewrap says."""

    args: tuple[str, ...]
    env: Mapping[str, str] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class EnvSpec:
    """What a backend's own virtual environment must provide (see `envs`)."""

    requirements: Path               # the backend's pinned requirements (torch comes from the shared constraints)
    cli_check: tuple[str, ...]       # arguments that make the backend's program answer quickly
    # `module` or `module:attribute`; each must import for the env to be usable
    imports: tuple[str, ...]
    # installed as dependencies but unusable with CPU torch (CUDA-only builds): removed on CPU
    cpu_removals: tuple[str, ...] = ()
    # packages whose native extension is a CUDA build; on CPU the extension files are deleted and the
    # package runs in its supported pure-Python mode (torchaudio: resample and friends still work)
    cpu_strip_native: tuple[str, ...] = ()


@dataclass(frozen=True)
class Launch:
    """How many processes: 1 (plain), N GPUs on one node, or several nodes (torchrun underneath)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    def __post_init__(self):
        if self.node_rank >= self.nnodes:
            raise InputError(f"node rank {self.node_rank} is not below the number of nodes ({self.nnodes})",
                             location=Location(field="--node-rank"), hint=f"ranks count from 0 to {self.nnodes - 1}")
        if self.nnodes > 1 and not self.master_addr:
            # both launchers would fall back to 127.0.0.1: every node waits for a rank 0 of its own
            raise InputError(f"{self.nnodes} nodes need the address of node rank 0", location=Location(field="--master-addr"),
                             hint="give every node the same --master-addr and --master-port")

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    @property
    def worker(self) -> bool:
        """A node other than rank 0: it trains, but the weights, logs and loss are written on rank 0."""
        return self.node_rank > 0

    def env(self) -> dict[str, str]:
        """The variables both launchers read (llamafactory's launcher.py, swift's cli/main.py)."""
        if not self.distributed:
            return {}
        env = {"NPROC_PER_NODE": str(self.nproc_per_node), "NNODES": str(self.nnodes),
               "NODE_RANK": str(self.node_rank)}
        if self.master_addr:
            env["MASTER_ADDR"] = self.master_addr
        if self.master_port or self.nnodes > 1:
            # LLaMA-Factory's launcher picks a free port of its own when none is given: on several
            # nodes each would pick a different one and never meet; torchrun's default for all
            env["MASTER_PORT"] = str(self.master_port or DEFAULT_MASTER_PORT)
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
class StepProgress:
    """One logged training step, read from the backend's own log."""

    step: int
    total: int | None
    loss: float | None
    lr: float | None
    eta: str | None
    eval_loss: float | None = None    # on the steps the validation set was scored (both backends log it so)

    def as_json(self) -> dict[str, Any]:
        shown = {"step": self.step, "total": self.total, "loss": self.loss, "lr": self.lr, "eta": self.eta}
        return shown if self.eval_loss is None else {**shown, "eval_loss": self.eval_loss}


@dataclass(frozen=True)
class TemplateProbe:
    """A unit's script that prints how the backend tokenizes a conversation (see `templatecheck`),
    and the keys of the run's rendered train config that change its template, passed to it."""

    script: Path
    train_keys: tuple[str, ...] = ()


class TableBackend:
    """A backend defined by data. A unit sets the class attributes below and nothing else."""

    name: ClassVar[str]
    program: ClassVar[str]                           # its CLI, in its env's bin/
    distribution: ClassVar[str]                      # pip name, for the version
    env: ClassVar[EnvSpec]
    subcommands: ClassVar[dict[str, tuple[str, ...]]]   # step -> argv after program
    # step -> a stylewrap script run in the backend env's python instead (`runner.script_invocation`)
    step_scripts: ClassVar[dict[str, Path]] = {}
    launcher_env: ClassVar[dict[str, str]] = {}      # extra env when distributed
    log_file: ClassVar[str]
    log_fields: ClassVar[LogFields]
    data_format: ClassVar[str]                       # adapters format the training file is written in
    data_suffix: ClassVar[str]
    # preference rows -> the adapters format it reads them in: "pairs" (dpo/orpo/simpo), "unpaired" (kto)
    preference_formats: ClassVar[dict[str, str]] = {}
    # the unit's dataset registration, a module with `register(dataset_dir, name, path, fmt, *, force)`
    # -> the registry file, and `hub_usage(repo_id, local_path, fmt)` -> (how to use it, JSON to paste)
    registration: ClassVar[ModuleType]
    # what to tell a person who registered a dataset by hand ({dataset_dir}, {info}, {name})
    registration_hint: ClassVar[str]
    dataset_location: ClassVar[dict[str, str]]      # unified option -> "{data_dir}/..." template
    # a hub dataset id (`data.train_file: swift/classical_chinese_translate`): unified option ->
    # template with {repo_id}, {name}, {data_dir}; the env the backend needs to fetch from ModelScope
    hub_dataset_location: ClassVar[dict[str, str]] = {}
    hub_dataset_env: ClassVar[dict[str, str]] = {}
    # the Python classes whose fields are every key a step accepts, for `known_keys` (a step left
    # out is not checked before the run)
    argument_classes: ClassVar[dict[str, tuple[str, ...]]] = {}
    tables: ClassVar[dict[str, flags.StepTable]]     # step -> its option column (`flags`)
    serve_recipe: ClassVar[ServeRecipe | None] = None      # how `stylewrap deploy` starts its server
    webui: ClassVar[WebUI | None] = None                   # its own training UI (`stylewrap webui`)
    # how the backend's own template code tokenizes a conversation (`templatecheck`)
    template_probe: ClassVar[TemplateProbe | None] = None
    # hybrid-thinking template -> its no-thinking twin, used for style data without <think> (the
    # backend's own advice), so no answer is trained or served behind a stray empty <think></think>
    nothink_templates: ClassVar[dict[str, str]] = {}
    # how the backend names a dataset (`data.mix: [{dataset: NAME}]`): its script resolving a name
    # through the backend's own registry code, and the registry file read when none is given
    # (relative to the config's folder; None: the backend's built-in registry)
    dataset_probe: ClassVar[Path | None] = None
    dataset_registry: ClassVar[str | None] = None

    def __init__(self, env_dir: Path | None = None, executable: Path | None = None):
        self.env_dir = env_dir
        self.executable = executable

    # ------------------------------------------------------------ configs

    def sections(self, step: str, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Unified options of `step` -> the sections of this backend's YAML config."""
        if step not in self.tables:
            raise ConfigError(f"{self.name} cannot {step}")
        return flags.translate(self.name, step, self.tables[step], options)

    def infer_sections(self, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """`sections("infer", ...)`, the name backends/compare.py (branch eval) calls."""
        return self.sections("infer", options)

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
        env = {"PYTHONUNBUFFERED": "1"}
        program = self.program_path()
        if program.is_absolute():
            # llamafactory starts `torchrun` by name: the env's bin must come first on PATH
            env["PATH"] = f"{program.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return env

    def invocation(self, step: str, run_dir: Path, config_file: str, extra_env: Mapping[str, str] = ()) -> Invocation:
        env = {**self.base_env(), **dict(extra_env)}
        if step in self.step_scripts:
            python = self.python() or Path("python")
            return script_invocation(python, self.step_scripts[step], config_file, env=env, cwd=Path(run_dir))
        argv = [str(self.program_path()), *self.subcommands[step], config_file]
        return Invocation(argv=argv, env=env, cwd=Path(run_dir))

    def train_invocation(self, run_dir: Path, config_file: str, launch: Launch, step: str = "train") -> Invocation:
        """`step` is "train" (SFT) or "preference" (its own subcommand on some backends)."""
        extra = {**launch.env(), **(self.launcher_env if launch.distributed else {})}
        return self.invocation(step, run_dir, config_file, extra)

    def export_invocation(self, run_dir: Path, config_file: str) -> Invocation:
        return self.invocation("export", run_dir, config_file)

    def infer_invocation(self, run_dir: Path, config_file: str) -> Invocation:
        return self.invocation("infer", run_dir, config_file)

    def webui_invocation(self, host: str, port: int) -> Invocation:
        """The backend's own training UI on exactly `host`:`port`, from its env (`webui`)."""
        if self.webui is None:
            raise InputError(f"{self.name} has no training UI")
        fill = {"host": host, "port": str(port)}
        env = {**self.base_env(), "GRADIO_ANALYTICS_ENABLED": "False",
               **{key: value.format(**fill) for key, value in self.webui.env.items()}}
        return Invocation(argv=[str(self.program_path()), *(arg.format(**fill) for arg in self.webui.args)], env=env)

    def deploy_invocation(self, options: Mapping[str, Any]) -> Invocation:
        """The backend's own OpenAI-compatible server, from `serve_recipe` (see `serving`)."""
        from stylewrap.backends.serving import server_invocation

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

    def hub_dataset_options(self, data_dir: str, name: str, repo_id: str) -> dict[str, Any]:
        """The unified options that point the backend at hub dataset `repo_id` (downloaded by the
        backend itself), registered as `name` in `data_dir` where the backend needs a registry."""
        if not self.hub_dataset_location:
            raise InputError(f"{self.name} cannot read a hub dataset id", location=Location(repo_id, field="data.train_file"),
                             hint="download the dataset and give its file")
        return {key: value.format(data_dir=data_dir, name=name, repo_id=repo_id)
                for key, value in self.hub_dataset_location.items()}

    def register_hub_dataset(self, data_dir: Path, name: str, repo_id: str, fmt: str | None) -> None:
        """Write the registry entry naming the hub dataset, where the backend reads one."""
        register_hub = getattr(self.registration, "register_hub", None)
        if register_hub is not None:
            register_hub(Path(data_dir), name, repo_id, fmt)

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
        from stylewrap.adapters.registration import check_dataset_name

        check_dataset_name(name)  # every backend's registry, every caller (data register, datagen, run)
        return self.registration.register(Path(data_dir), name, Path(path), fmt, force=force)

    def hub_registration(self, repo_id: str, local_path: Path, fmt: str) -> tuple[str, str]:
        """(how to use it, the JSON to paste) for reading `local_path`, published as dataset
        `repo_id` on ModelScope, with this backend; for the dataset card."""
        return self.registration.hub_usage(repo_id, local_path, fmt)

    # ------------------------------------------------------------ logs and outputs

    def read_progress(self, record: Mapping[str, Any]) -> StepProgress | None:
        fields = self.log_fields
        if fields.loss not in record and "eval_loss" not in record:
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
        return StepProgress(step=step, total=total, loss=_number(record.get(fields.loss)),
                            lr=_number(record.get(fields.lr)), eta=record.get(fields.eta),
                            eval_loss=_number(record.get("eval_loss")))

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
        """The backend environment's python: the one a configured executable starts with (its `#!`
        line), else the env's; stylewrap's helper scripts (`runner.script_invocation`) run in it."""
        if self.executable is not None and (found := python_of_executable(self.executable)) is not None:
            return found
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


# ---------------------------------------------------------------- known keys

def known_keys(backend: TableBackend, step: str) -> set[str] | None:
    """Every key `step` accepts, read from the installed backend's argument dataclasses (cached
    per version); None when the backend is not installed."""
    import subprocess

    from stylewrap.fsutil import atomic_write_json

    python, version = backend.python(), backend.version()
    if python is None or version is None or step not in backend.argument_classes:
        return None
    cache = Path("~/.cache/stylewrap/known-keys").expanduser() / f"{backend.name}-{version}-{step}.json"
    if cache.is_file():
        return set(json.loads(cache.read_text(encoding="utf-8")))
    query = script_invocation(python, KEYS_SCRIPT, *backend.argument_classes[step])
    # the one subprocess outside runner.run: a read-only query, its output is data, not a log
    proc = subprocess.run(query.argv, capture_output=True, text=True)
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


# ---------------------------------------------------------------- the one way to get a backend


def get_backend(name: str, config=None) -> TableBackend:
    """The backend `name`, pointed at its environment (managed, or the user's venv/executable)."""
    factory = backend_class(name)
    settings = config.backends.of(name) if config is not None else None
    executable = resolve_executable(settings.executable) if settings is not None and settings.executable else None
    return factory(env_dir=env_dir(name, config), executable=executable)
