"""`stylewrap deploy`: a trained model behind the backend's own OpenAI-compatible server.

What differs between backends is data: each backend unit's `serve_recipe` (the server module, its
flags and env vars, whether the base model is served beside the adapter), turned into a process by
`stylewrap.backends.serving`. Either way stylewrap serves the same names
(tuned model: `--served-model-name`, default `default-lora` as in the ms-swift tutorials; base model:
`--base-served-name`, default the last part of its folder or hub id, lowercased), on exactly the host and port asked for, with the same 401
for a missing key. `backends/serve_launcher.py` enforces that inside the backend's process.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stylewrap.config import DEFAULT_SYSTEM_PROMPT, StylewrapConfig
from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.rundir import RunInfo, load_run, resolve
from stylewrap.runner import Invocation, describe
from stylewrap.serve import servers
from stylewrap.serve.servers import ServerRecord

DEFAULT_TUNED_NAME = "default-lora"
# requests a batching server answers together by default: 16 concurrent chats on a 7B on one H200
# took ~2x a lone answer's time for ~10x its tokens (docs/benchmarks.md, serving round 2)
SERVE_BATCH_SIZE = 16


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
    checkpoint: str | None = None           # N, best or last (default) of --run
    base_served_name: str | None = None
    extra_args: dict[str, Any] = field(default_factory=dict)
    allow_template_mismatch: bool = False
    engine: str | None = None


@dataclass
class DeployPlan:
    invocation: Invocation
    record: ServerRecord
    startup_timeout: float
    serve_template: tuple[Any, str | None] | None = None    # (serving backend, template it is given)

    def describe(self) -> str:
        return describe(self.invocation)


def plan(request: DeployRequest, config: StylewrapConfig) -> DeployPlan:
    """Resolve the request into the exact process to start and the record it will have."""
    from stylewrap.backends.base import get_backend
    from stylewrap.backends.modelinfo import model_family
    from stylewrap.backends.serving import engine_args

    cfg = config.deploy
    model, adapter, run_backend, run_template, run_system = _resolve_weights(request)
    backend = get_backend(request.backend or cfg.backend or run_backend or config.train.backend, config)
    if getattr(backend, "serve_recipe", None) is None:
        raise InputError(f"backend {backend.name!r} cannot serve models")
    host = request.host or cfg.host
    port = request.port or cfg.port
    api_key_env = request.api_key_env or cfg.api_key_env
    if api_key_env and not os.environ.get(api_key_env):
        raise InputError(f"--api-key-env {api_key_env}: that environment variable is empty or unset")
    servers.warn_if_exposed(host, "the server", "it needs the key in $" + api_key_env if api_key_env
                            else "with no --api-key-env anyone of them can use the model")
    extra_args = {**cfg.extra_args, **request.extra_args}
    engine = request.engine or cfg.engine
    # batching is the transformers engine's (vLLM, SGLang, LMDeploy schedule requests themselves)
    batching = engine in (None, "transformers") and backend.serve_recipe.batch_flag is not None
    if batching:
        extra_args = _with_batch_size(extra_args, backend, cfg, adapter)
    tuned, base = _served_names(model, adapter, request.served_model_name or cfg.served_model_name,
                                request.base_served_name or cfg.base_served_name)
    both = adapter is not None and backend.serve_recipe.serves_base_beside_adapter
    family = model_family(model)
    options = {
        "model": model, "adapter": adapter, "tuned_name": tuned, "base_name": base,
        "models": [tuned, base] if both else [tuned],
        "template": request.template or cfg.template or run_template or family.get("template"),
        # a request without a system prompt gets the one training rendered on every row
        "system": run_system or config.style.system_prompt or DEFAULT_SYSTEM_PROMPT,
        "model_type": family.get("model_type"),
        "host": host, "port": port, "api_key_env": api_key_env,
        "extra_args": extra_args,
        "batch_window_ms": cfg.batch_window_ms if batching else None,
        "engine_args": engine_args(backend, engine),
    }
    invocation = backend.deploy_invocation(options)
    # a run's weights (adapter or merged) or an adapter are tuned; a model folder alone may be anything
    tuned_weights = adapter is not None or request.run_dir is not None
    record = ServerRecord(
        pid=0, host=host, port=port, backend=backend.name, models=options["models"],
        log_file=str(servers.log_path(port)), command=invocation.shell_line(), api_key_env=api_key_env,
        roles=["tuned", "base"][:len(options["models"])] if tuned_weights else [],
    )
    return DeployPlan(invocation, record, cfg.startup_timeout, serve_template=(backend, options["template"]))


def _with_batch_size(extra_args: dict, backend, cfg, adapter: str | None) -> dict:
    """The server's batch option: `deploy.batch_size`, else SERVE_BATCH_SIZE, else 1 where the backend
    cannot batch an unmerged adapter (asking for more there is refused)."""
    recipe = backend.serve_recipe
    flag = recipe.batch_flag
    field = f"deploy.extra_args.{flag}" if flag in extra_args else "deploy.batch_size"
    size = extra_args.get(flag, cfg.batch_size)
    unbatchable = adapter is not None and not recipe.batches_adapters
    if size is not None and unbatchable and int(size) > 1:
        raise InputError(f"{backend.name} answers batched requests to an unmerged adapter with an error", location=Location(field=field),
                         hint="merge it (`stylewrap export RUN`) and serve `--model RUN/merged`, or set deploy.batch_size: 1")
    extra_args = {**extra_args, flag: size if size is not None else 1 if unbatchable else SERVE_BATCH_SIZE}
    if recipe.batch_plugins:
        mine = extra_args.get(recipe.plugins_flag, [])
        extra_args[recipe.plugins_flag] = [*recipe.batch_plugins, *(mine if isinstance(mine, list) else [mine])]
    return extra_args


def check_template(run_dir: Path, config: StylewrapConfig, deploy_plan: DeployPlan, *, allow: bool) -> None:
    """The server's template against the run's training template (and the merged model's, if any)."""
    from stylewrap.backends import templatecheck
    from stylewrap.backends.base import get_backend
    from stylewrap.backends.modelinfo import model_family

    from stylewrap.backends import ollama

    run = RunInfo.load(run_dir)
    modelfile = Path(run_dir) / ollama.OLLAMA_DIR / ollama.MODELFILE
    report = templatecheck.check_run(
        Path(run_dir), get_backend(run.backend, config), base_model=run.base_model, template=run.template,
        model_type=model_family(run.base_model).get("model_type"),
        system=run.hyperparameters.get("system") or config.style.system_prompt,
        merged_dir=resolve(Path(run_dir), run.merged_dir), serve=deploy_plan.serve_template,
        modelfile=modelfile if modelfile.is_file() else None)
    templatecheck.require_consistent(report, allow=allow, action="deploy")


def _resolve_weights(request: DeployRequest) -> tuple[str, Path | None, str | None, str | None, str | None]:
    """(model, adapter, backend of the run, template of the run, system prompt of the run)."""
    if request.run_dir and request.model:
        raise InputError("give --run or --model, not both")
    if request.run_dir:
        run = load_run(request.run_dir, request.checkpoint)
        weights = resolve(request.run_dir, run.adapter_dir)
        if weights is None or not weights.exists():
            raise InputError(f"run {run.run_id} has no trained weights yet (status: {run.status})",
                             hint="train it first: `stylewrap train`")
        if run.method == "full":
            return str(weights), None, run.backend, run.template, run.hyperparameters.get("system")
        return run.base_model, request.adapter or weights, run.backend, run.template, run.hyperparameters.get("system")
    if not request.model:
        raise InputError("nothing to serve", hint="pass --run RUN_DIR or --model DIR [--adapter DIR]")
    if request.adapter is not None and not (Path(request.adapter) / "adapter_config.json").is_file():
        raise InputError("not a LoRA adapter folder (no adapter_config.json)", hint=str(request.adapter))
    return request.model, request.adapter, None, None, None


def default_base_name(model: str) -> str:
    """The base model's served name: the last part of its folder or hub id, lowercased, as the
    ms-swift tutorials request it (`Qwen/Qwen2-7B-Instruct` -> `qwen2-7b-instruct`)."""
    return (Path(model.rstrip("/")).name or model).lower()


def _served_names(model: str, adapter: Path | None, requested: str | None,
                  requested_base: str | None = None) -> tuple[str, str]:
    """(tuned name, base name)."""
    if adapter is None:   # one model, served under its own folder name unless named
        alone = requested or Path(model.rstrip("/")).name or model
        return alone, alone
    base = requested_base or default_base_name(model)
    tuned = requested or DEFAULT_TUNED_NAME
    if tuned == base:
        raise InputError(f"served model name {tuned!r} is also the base model's name", hint="pick another --served-model-name or --base-served-name")
    return tuned, base


# ---------------------------------------------------------------- the verbs the CLI calls


def start(request: DeployRequest, config: StylewrapConfig) -> ServerRecord:
    """Start in the background and return once the server answers (`--detach`)."""
    deploy_plan = plan(request, config)
    if request.run_dir:
        check_template(request.run_dir, config, deploy_plan, allow=request.allow_template_mismatch)
    return servers.start(deploy_plan.invocation, deploy_plan.record, startup_timeout=deploy_plan.startup_timeout)


def serve(
    request: DeployRequest,
    config: StylewrapConfig,
    *,
    on_ready: Callable[[ServerRecord], None],
    on_line: Callable[[str], None],
) -> None:
    """Serve in the foreground: start, report ready, stream the log, stop the whole tree on exit,
    Ctrl-C (KeyboardInterrupt propagates) or SIGTERM (turned into KeyboardInterrupt)."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        record = start(request, config)
        try:
            on_ready(record)
            servers.follow(record, on_line)
            # only Ctrl-C/SIGTERM end a foreground server normally
            raise RunFailed(servers.died_message(record, "the server exited"))
        finally:
            servers.stop(record)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@dataclass
class ServerStatus:
    record: ServerRecord
    running: bool
    answers: bool
    detail: str


def status() -> list[ServerStatus]:
    out = []
    for record in servers.all_records():
        running = servers.is_running(record)
        answers, detail = servers.probe(record) if running else (False, "not running")
        out.append(ServerStatus(record, running, answers, detail))
    return out


def stop(port: int | None = None) -> ServerRecord:
    record = servers.find_record(port)
    servers.stop(record)
    return record


def logs(port: int | None = None, lines: int = 50) -> tuple[ServerRecord, list[str]]:
    record = servers.find_record(port)
    return record, servers.tail(record.log_file, lines)


def running_servers() -> list[ServerRecord]:
    return sorted((r for r in servers.all_records() if servers.is_running(r)), key=lambda r: (r.host, r.port))


def known_server(base_url: str | None = None, model: str | None = None,
                 choose: Callable[[list[ServerRecord]], ServerRecord] | None = None) -> ServerRecord | None:
    """The stylewrap server chat and app talk to (they take its model names and key variable from it).

    With `base_url`: the running server there, if stylewrap started it. Without: the only one
    running, or among several the only one serving `model`, or the one `choose` picks; with
    several and no way to choose, an error naming them all (never a silent guess)."""
    running = running_servers()
    if base_url is not None:
        return next((r for r in running if r.base_url == base_url.rstrip("/")), None)
    if model is not None and len(running) > 1:
        running = [r for r in running if model in r.models] or running
    if len(running) <= 1:
        return running[0] if running else None
    if choose is not None:
        return choose(running)
    named = "; ".join(describe_server(r) for r in running)
    raise InputError(f"{len(running)} stylewrap servers are running: {named}",
                     hint="say which: --base-url URL (or --model NAME when only one serves it)")


def describe_server(record: ServerRecord) -> str:
    return f"{record.base_url} ({record.backend}: {', '.join(record.models)})"
