"""How a backend's own OpenAI-compatible server is started: each backend unit holds a `ServeRecipe`
(the server module, its flags and env vars, whether the base model is served beside the adapter);
`server_invocation` turns it and the resolved deploy options into the process to start.

The process is `serve_launcher.py` in the backend's environment (see there for what it enforces:
exact host and port, the 401 for a missing key, served model names). `stylewrap.serve.deploy`
decides *what* to serve; this module knows only *how* a backend serves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from stylewrap.errors import BackendNotInstalled, InputError, Location
from stylewrap.runner import Invocation, script_invocation

if TYPE_CHECKING:
    from stylewrap.backends.base import TableBackend

LAUNCHER = Path(__file__).with_name("serve_launcher.py")


@dataclass(frozen=True)
class ServeRecipe:
    """How one backend's server is started; each backend class holds one as `serve_recipe`."""

    module: str                          # run as __main__ (never the `swift`/`llamafactory-cli` launcher)
    leading_args: tuple[str, ...]
    model_flag: str
    adapter_flag: str
    template_flag: str
    default_args: dict[str, str]         # overridable through deploy.extra_args
    serves_base_beside_adapter: bool     # True: base under its own name, adapter as NAME=PATH
    model_type_flag: str | None = None
    host_port_flags: tuple[str, str] | None = None
    host_port_env: tuple[str, str] | None = None
    name_flag: str | None = None         # names the model served at the base slot
    # the system prompt used when a request has none: the one the run was trained with, since the
    # template's own (LLaMA-Factory's qwen: "You are Qwen, created by Alibaba Cloud. ...") is not it
    system_flag: str | None = None
    name_env: str | None = None
    # the server option that answers concurrent requests in one batch (`deploy.batch_size`), and
    # whether the backend batches an unmerged adapter right (ms-swift 4.6 does not: it passes one
    # adapter name for a batch of N and peft raises "Length of `adapter_names` should be the same as
    # the number of inputs", ms-swift issue #5285)
    batch_flag: str | None = None
    batches_adapters: bool = True
    # plugin files the server imports at start to batch well (ms-swift's `--external_plugins`), that
    # option, and the environment variable through which they read `deploy.batch_window_ms`
    batch_plugins: tuple[str, ...] = ()
    plugins_flag: str | None = None
    batch_window_env: str | None = None
    # `deploy --engine`: engine -> the server args that select it; an engine left out is refused
    # with its `engine_refusals` reason; `engine_pins`: the versions the backend accepts
    engines: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    engine_refusals: Mapping[str, str] = field(default_factory=dict)
    engine_pins: Mapping[str, str] = field(default_factory=dict)


ENGINES = ("transformers", "vllm", "sglang", "lmdeploy")
# the distribution each engine needs in the backend env
ENGINE_PACKAGES = {"vllm": "vllm", "sglang": "sglang", "lmdeploy": "lmdeploy"}


def engine_args(backend: TableBackend, engine: str | None) -> dict[str, str]:
    """The server args selecting `engine`, or an InputError saying why this backend cannot use it."""
    from packaging.specifiers import SpecifierSet

    recipe = backend.serve_recipe
    if engine is None:
        return {}
    where = Location(field="deploy.engine")
    if engine not in recipe.engines:
        why = recipe.engine_refusals.get(engine, f"{backend.name} serves with {', '.join(recipe.engines)}")
        raise InputError(f"{backend.name} cannot serve with {engine}: {why}", location=where)
    package = ENGINE_PACKAGES.get(engine)
    installed = backend.installed()
    if package and installed:
        version = installed.get(package)
        if version is None:
            raise InputError(f"{engine} is not installed in the {backend.name} environment", location=where,
                             hint="install it there (it needs a CUDA GPU), or serve with --engine transformers")
        pin = recipe.engine_pins.get(engine)
        if pin and version not in SpecifierSet(pin):
            raise InputError(f"{backend.name} {backend.version()} accepts {engine}{pin}, the env has {version}",
                             location=where)
    return dict(recipe.engines[engine])


def server_invocation(backend: TableBackend, options: Mapping[str, Any]) -> Invocation:
    """The launcher running `backend`'s server for the resolved deploy `options` (model, adapter,
    tuned_name, base_name, models, template, system, model_type, host, port, api_key_env, extra_args)."""
    recipe = backend.serve_recipe
    adapter, both = options["adapter"], len(options["models"]) > 1
    argv: list[str] = [*recipe.leading_args, recipe.model_flag, options["model"]]
    env: dict[str, str] = {}
    if adapter:
        argv += [recipe.adapter_flag, f"{options['tuned_name']}={adapter}" if both else str(adapter)]
    if options["template"]:
        argv += [recipe.template_flag, options["template"]]
    if options.get("system") and recipe.system_flag:
        argv += [recipe.system_flag, options["system"]]
    if options["model_type"] and recipe.model_type_flag:
        argv += [recipe.model_type_flag, options["model_type"]]
    name_at_base_slot = options["base_name"] if both else options["tuned_name"]
    if recipe.name_flag:
        argv += [recipe.name_flag, name_at_base_slot]
    if recipe.name_env:
        env[recipe.name_env] = name_at_base_slot
    host, port = options["host"], options["port"]
    if recipe.host_port_flags:
        argv += [recipe.host_port_flags[0], host, recipe.host_port_flags[1], str(port)]
    if recipe.host_port_env:
        env.update({recipe.host_port_env[0]: host, recipe.host_port_env[1]: str(port)})
    args = {**recipe.default_args, **options.get("engine_args", {}), **options["extra_args"]}
    plugins = _as_list(args.pop(recipe.plugins_flag)) if recipe.plugins_flag in args else []
    for key, value in args.items():
        argv += [f"--{key}", _flag_value(value)]
    if plugins:   # one option, several files
        argv += [f"--{recipe.plugins_flag}", *plugins]
    if recipe.batch_window_env and options.get("batch_window_ms") is not None:
        env[recipe.batch_window_env] = f"{options['batch_window_ms']:g}"
    spec = {"module": recipe.module, "argv": argv, "host": host, "port": port,
            "served_models": options["models"], "api_key_env": options["api_key_env"]}
    python = backend.python()
    if python is None:
        raise BackendNotInstalled(f"the {backend.name} environment is not installed",
                                  hint=f"run `stylewrap backend install {backend.name}`")
    return script_invocation(python, LAUNCHER, json.dumps(spec, ensure_ascii=False), env=env)


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
