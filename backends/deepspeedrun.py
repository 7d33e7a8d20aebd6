"""What a run does with its DeepSpeed choice (the presets are `deepspeed.py`): the config file it
renders or copies, ZeRO left out on one process, DeepSpeed required in the env on several."""

from __future__ import annotations

import json
from pathlib import Path

from stylewrap.backends.base import CONFIG_DIR, Launch, TableBackend
from stylewrap.backends.deepspeed import DEEPSPEED_PRESETS
from stylewrap.backends.render import render_deepspeed
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError, Location


def deepspeed_file(choice: str | None, config: StylewrapConfig) -> tuple[str | None, str | None, Path | None]:
    """(relative config path, rendered text or None, source file to copy or None)."""
    if not choice:
        return None, None, None
    if choice in DEEPSPEED_PRESETS:
        return f"{CONFIG_DIR}/ds_{choice}.json", render_deepspeed(choice), None
    source = config.resolve_path(choice)
    if source is None or not source.is_file():
        raise InputError("DeepSpeed config not found", location=Location(choice, field="train.deepspeed"),
                         hint=f"use {', '.join(DEEPSPEED_PRESETS)} or a JSON file")
    try:
        json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", location=Location(source, exc.lineno)) from None
    return f"{CONFIG_DIR}/ds_custom.json", None, source


def single_process_deepspeed(choice: str | None, launch: Launch, backend: str, notices: list[str]) -> str | None:
    """The DeepSpeed config a run uses: none on one process, where ZeRO has nothing to shard
    across (it splits optimizer state and gradients between processes), said in a notice."""
    if choice and launch.nproc_per_node * launch.nnodes == 1:
        notices.append(f"DeepSpeed {choice} left out: one process has nothing to shard ZeRO across. On several GPUs: "
                       f"`stylewrap backend install {backend} --deepspeed`, then --nproc-per-node N.")
        return None
    return choice


def require_deepspeed(backend: TableBackend, rendered: str | None) -> None:
    """A multi-process DeepSpeed run needs deepspeed in the backend env: say how to add it, before
    the backend dies on an import error deep in its launcher."""
    installed = backend.installed()
    if rendered and installed and "deepspeed" not in installed:
        raise InputError(f"DeepSpeed is not in {backend.name}'s env", location=Location(field="train.deepspeed"),
                         hint=f"stylewrap backend install {backend.name} --deepspeed; or one process: --nproc-per-node 1")
