"""`stylewrap deploy`: a trained model behind the backend's own OpenAI-compatible server.

What differs between backends is data (`ServeRecipe`): the server module, its flags and env vars,
and whether the base model is served beside the adapter. Either way stylewrap serves the same names
(tuned model: `--served-model-name`, default `default-lora` as in the ms-swift tutorials; base model:
its folder name, as ms-swift names it), on exactly the host and port asked for, with the same 401
for a missing key. `backends/serve_launcher.py` enforces that inside the backend's process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stylewrap import server
from stylewrap.config import StylewrapConfig
from stylewrap.errors import BackendNotInstalled, InputError
from stylewrap.rundir import RunInfo, resolve
from stylewrap.runner import Invocation, describe, python_of_venv
from stylewrap.server import ServerRecord

DEFAULT_TUNED_NAME = "default-lora"


@dataclass(frozen=True)
class ServeRecipe:
    """How one backend's server is started; every difference between backends lives here."""

    module: str                          # run as __main__ (never the `swift`/`llamafactory-cli` launcher)
    leading_args: tuple[str, ...]
    model_flag: str
    adapter_flag: str
    template_flag: str
    default_args: dict[str, str]         # overridable through deploy.extra_args
    serves_base_beside_adapter: bool     # True: base under its own name, adapter as NAME=PATH
    host_port_flags: tuple[str, str] | None = None
    host_port_env: tuple[str, str] | None = None
    name_flag: str | None = None         # names the model served at the base slot
    name_env: str | None = None


RECIPES: dict[str, ServeRecipe] = {
    "llamafactory": ServeRecipe(
        module="llamafactory.cli",
        leading_args=("api",),
        model_flag="--model_name_or_path",
        adapter_flag="--adapter_name_or_path",
        template_flag="--template",
        default_args={"infer_backend": "huggingface"},
        serves_base_beside_adapter=False,
        host_port_env=("API_HOST", "API_PORT"),
        # without it every answer claims to come from `gpt-3.5-turbo`
        name_env="API_MODEL_NAME",
    ),
    "swift": ServeRecipe(
        module="swift.cli.deploy",
        leading_args=(),
        model_flag="--model",
        adapter_flag="--adapters",
        template_flag="--template",
        default_args={"infer_backend": "transformers"},
        serves_base_beside_adapter=True,
        host_port_flags=("--host", "--port"),
        name_flag="--served_model_name",
    ),
}


@dataclass
class DeployRequest:
    """What the user asked for; unset fields fall back to the run, then to the config."""

    run_dir: Path | None = None
    model: str | None = None
    adapter: Path | None = None
    backend: str | None = None
    host: str | None = None
    port: int | None = None
    served_model_name: str | None = None
    api_key_env: str | None = None
    template: str | None = None
    extra_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployPlan:
    invocation: Invocation
    record: ServerRecord
    startup_timeout: float

    def describe(self) -> str:
        return describe(self.invocation)


def plan(request: DeployRequest, config: StylewrapConfig) -> DeployPlan:
    """Resolve the request into the exact process to start and the record it will have."""
    cfg = config.deploy
    model, adapter, run_backend, run_template = _resolve_weights(request)
    backend = request.backend or cfg.backend or run_backend or config.train.backend
    if backend not in RECIPES:
        raise InputError(f"unknown backend {backend!r}", hint=f"one of: {', '.join(RECIPES)}")
    recipe = RECIPES[backend]
    host = request.host or cfg.host
    port = request.port or cfg.port
    api_key_env = request.api_key_env or cfg.api_key_env
    if api_key_env and not os.environ.get(api_key_env):
        raise InputError(f"--api-key-env {api_key_env}: that environment variable is empty or unset")
    tuned, base = _served_names(model, adapter, request.served_model_name or cfg.served_model_name)
    models = [tuned, base] if (adapter and recipe.serves_base_beside_adapter) else [tuned]

    argv: list[str] = [*recipe.leading_args, recipe.model_flag, model]
    env: dict[str, str] = {}
    if adapter:
        argv += [recipe.adapter_flag, f"{tuned}={adapter}" if recipe.serves_base_beside_adapter else str(adapter)]
    template = request.template or cfg.template or run_template
    if template:
        argv += [recipe.template_flag, template]
    name_at_base_slot = base if (adapter and recipe.serves_base_beside_adapter) else tuned
    if recipe.name_flag:
        argv += [recipe.name_flag, name_at_base_slot]
    if recipe.name_env:
        env[recipe.name_env] = name_at_base_slot
    if recipe.host_port_flags:
        argv += [recipe.host_port_flags[0], host, recipe.host_port_flags[1], str(port)]
    if recipe.host_port_env:
        env.update({recipe.host_port_env[0]: host, recipe.host_port_env[1]: str(port)})
    for key, value in {**recipe.default_args, **cfg.extra_args, **request.extra_args}.items():
        argv += [f"--{key}", _flag_value(value)]

    spec = {"module": recipe.module, "argv": argv, "host": host, "port": port,
            "served_models": models, "api_key_env": api_key_env}
    python = _backend_python(backend, config)
    invocation = Invocation([str(python), str(_launcher_path()), json.dumps(spec, ensure_ascii=False)], env=env)
    record = ServerRecord(
        pid=0, host=host, port=port, backend=backend, models=models,
        log_file=str(server.log_path(port)), command=invocation.shell_line(), api_key_env=api_key_env,
    )
    return DeployPlan(invocation, record, cfg.startup_timeout)


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _resolve_weights(request: DeployRequest) -> tuple[str, Path | None, str | None, str | None]:
    """(model, adapter, backend of the run, template of the run)."""
    if request.run_dir and request.model:
        raise InputError("give --run or --model, not both")
    if request.run_dir:
        run = RunInfo.load(request.run_dir)
        weights = resolve(request.run_dir, run.adapter_dir)
        if weights is None or not weights.exists():
            raise InputError(f"run {run.run_id} has no trained weights yet (status: {run.status})",
                             hint="train it first: `stylewrap train`")
        if run.method == "full":
            return str(weights), None, run.backend, run.template
        return run.base_model, request.adapter or weights, run.backend, run.template
    if not request.model:
        raise InputError("nothing to serve", hint="pass --run RUN_DIR or --model DIR [--adapter DIR]")
    if request.adapter is not None and not (Path(request.adapter) / "adapter_config.json").is_file():
        raise InputError("not a LoRA adapter folder (no adapter_config.json)", hint=str(request.adapter))
    return request.model, request.adapter, None, None


def _served_names(model: str, adapter: Path | None, requested: str | None) -> tuple[str, str]:
    """(tuned name, base name): the base keeps its folder name, as ms-swift names it."""
    base = Path(model.rstrip("/")).name or model
    if adapter is None:
        return requested or base, base
    tuned = requested or DEFAULT_TUNED_NAME
    if tuned == base:
        raise InputError(f"served model name {tuned!r} is also the base model's name", hint="pick another --served-model-name")
    return tuned, base


def _launcher_path() -> Path:
    import stylewrap.backends

    return Path(stylewrap.backends.__file__).resolve().parent / "serve_launcher.py"


def _backend_python(backend: str, config: StylewrapConfig) -> Path:
    from stylewrap.backends.envs import env_dir, env_python

    own = getattr(config.backends, backend).executable
    if own:
        python = Path(own).expanduser().parent / "python"
        if python.exists():
            return python
    python = env_python(backend, config)
    if python is None:
        raise BackendNotInstalled(
            f"the {backend} environment is not installed ({python_of_venv(env_dir(backend, config))} missing)",
            hint=f"run `stylewrap backend install {backend}`",
        )
    return python


# ---------------------------------------------------------------- the verbs the CLI calls


def start(request: DeployRequest, config: StylewrapConfig) -> ServerRecord:
    """Start in the background and return once the server answers (`--detach`)."""
    deploy_plan = plan(request, config)
    return server.start(deploy_plan.invocation, deploy_plan.record, startup_timeout=deploy_plan.startup_timeout)


def serve(
    request: DeployRequest,
    config: StylewrapConfig,
    *,
    on_ready: Callable[[ServerRecord], None],
    on_line: Callable[[str], None],
) -> None:
    """Serve in the foreground: start, report ready, stream the log, stop the whole tree on exit or Ctrl-C."""
    record = start(request, config)
    try:
        on_ready(record)
        server.follow(record, on_line)
    finally:
        server.stop(record)


@dataclass
class ServerStatus:
    record: ServerRecord
    running: bool
    answers: bool
    detail: str


def status() -> list[ServerStatus]:
    out = []
    for record in server.all_records():
        running = server.is_running(record)
        answers, detail = server.probe(record) if running else (False, "not running")
        out.append(ServerStatus(record, running, answers, detail))
    return out


def stop(port: int | None = None) -> ServerRecord:
    record = server.find_record(port)
    server.stop(record)
    return record


def logs(port: int | None = None, lines: int = 50) -> tuple[ServerRecord, list[str]]:
    record = server.find_record(port)
    return record, server.tail(record.log_file, lines)


def current_endpoint() -> ServerRecord | None:
    """The one running stylewrap server, if there is exactly one (chat and app default to it)."""
    running = [r for r in server.all_records() if server.is_running(r)]
    return running[0] if len(running) == 1 else None
