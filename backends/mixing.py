"""Rows added to a run's training data besides the style rows: self-cognition rows with the
configured identity (`style.identity`) and general-purpose rows against forgetting (`data.mix`).

Both are plain records, so they reach either backend the same way, through the run's converted
dataset; `run.json` counts each source (`dataset.added`).
"""

from __future__ import annotations

import os
import random
from importlib import resources
from pathlib import Path
from typing import Iterator

from stylewrap.adapters.records import Record
from stylewrap.config import MixSource, StylewrapConfig
from stylewrap.errors import InputError, Location
from stylewrap.identitynames import contradictions, fill

READABLE = (".json", ".jsonl")   # what a registered dataset's folder is read for


def builtin_identity_file() -> Path:
    return Path(str(resources.files("stylewrap.templates") / "identity" / "identity.jsonl"))


def identity_rows(config: StylewrapConfig) -> list[Record]:
    """The self-cognition rows with the placeholders filled; a row left with a placeholder is an error."""
    from stylewrap.adapters import read_records

    identity = config.style.identity
    source = config.resolve_path(identity.file) if identity.file else builtin_identity_file()
    if source is None or not source.is_file():
        raise InputError("identity file not found", location=Location(identity.file, field="style.identity.file"))
    rows = []
    for record in read_records(source):
        # LLaMA-Factory's identity.json spells them {{name}}/{{author}}; ms-swift's self-cognition {{NAME}}/{{AUTHOR}}
        messages = [{**m, "content": fill(str(m.get("content") or ""), identity.name, identity.author)}
                    for m in record.messages]
        if any("{{" in m["content"] for m in messages):
            raise InputError("a placeholder other than {{name}}/{{author}} is left",
                             location=Location(source, record.line, field="style.identity.file"))
        rows.append(Record(messages=messages, tools=record.tools, meta={**record.meta, "source": "identity"}))
    return rows


def check_row_systems(rows: list[Record], source: Path, config: StylewrapConfig) -> None:
    """A style row whose own system message names the model otherwise contradicts the identity rows
    trained beside it (the model learns both names)."""
    identity = config.style.identity
    if identity is None:
        return
    for record in rows:
        for message in record.messages:
            if message.get("role") != "system":
                continue
            for _, problem in contradictions(identity.name, None, str(message.get("content") or "")):
                raise InputError(problem.replace("the system prompt", "this row's system message"),
                                 location=Location(source, record.line, field="messages[system]"),
                                 hint="drop or fix the system message, or change style.identity.name")


def _hub_caches(kind: str, repo_id: str) -> list[Path]:
    """Where a dataset downloaded from the hub once lies (ModelScope's and Hugging Face's own cache layouts)."""
    if kind == "modelscope":
        root = Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub")).expanduser()
        return [root / "datasets" / repo_id]
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    root = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub")).expanduser()
    return sorted((root / f"datasets--{repo_id.replace('/', '--')}" / "snapshots").glob("*"))


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in READABLE and p.is_file() and not p.name.startswith("."))


def registered_files(config: StylewrapConfig, entry: MixSource, index: int) -> list[Path]:
    """The local files `entry.dataset` names, through train.backend's own registry code; a name
    that only points at a hub is used from the hub's local cache, else refused (no download)."""
    from stylewrap.backends.base import get_backend
    from stylewrap.backends.templatecheck import _run_script

    where = Location(entry.dataset, field=f"data.mix[{index}].dataset")
    backend = get_backend(config.train.backend, config)
    python = backend.python()
    if backend.dataset_probe is None or python is None:
        raise InputError(f"{backend.name} cannot resolve dataset names here", location=where,
                         hint=f"give data.mix[{index}].file, or `stylewrap backend install {backend.name}`")
    registry_name = entry.registry or backend.dataset_registry
    registry = config.resolve_path(registry_name) if registry_name else None
    if registry_name and (registry is None or not registry.is_file()):
        raise InputError(f"{backend.name}'s dataset registry {registry} not found", location=where,
                         hint=f"set data.mix[{index}].registry to its dataset_info.json")
    found = _run_script(python, backend.dataset_probe, {"name": entry.dataset, "registry": str(registry) if registry else None})
    if found.get("path"):
        path = Path(found["path"])
        files = [path] if path.is_file() else _data_files(path) if path.is_dir() else []
        if files:
            return files
        raise InputError(f"{backend.name} names {path}, which is not on this machine", location=where)
    for kind, repo_id in found["hub"].items():
        for folder in (f for f in _hub_caches(kind, repo_id) if repo_id and f.is_dir()):
            if _data_files(folder):
                return _data_files(folder)
    hubs = ", ".join(f"{kind} {repo_id}" for kind, repo_id in found["hub"].items() if repo_id)
    what = f"registered with {backend.name} as {hubs}" if found["registered"] else f"not registered with {backend.name} ({hubs}?)"
    raise InputError(f"dataset {entry.dataset!r} is {what}, and not in the hub's cache on this machine "
                     "(stylewrap does not download)", location=where,
                     hint=f"download it once where there is network, or give data.mix[{index}].file")


def source_name(config: StylewrapConfig, entry: MixSource) -> str:
    """How run.json and the eval report name a `data.mix` entry: its dataset name, else its file."""
    return entry.dataset or str(config.resolve_path(entry.file))


def general_rows(config: StylewrapConfig, style_rows: int) -> Iterator[tuple[str, list[Record]]]:
    """(source, rows) for each `data.mix` entry: ratio x style_rows rows, sampled with train.seed."""
    from stylewrap.adapters import read_records

    for index, entry in enumerate(config.data.mix):
        if entry.dataset is not None:
            files = registered_files(config, entry, index)
        else:
            source = config.resolve_path(entry.file)
            if source is None or not source.is_file():
                raise InputError("mix file not found", location=Location(entry.file, field=f"data.mix[{index}].file"),
                                 hint="data.mix takes files stylewrap reads (`stylewrap data stats FILE`)")
            files = [source]
        rows = [row for path in files for row in read_records(path)]
        wanted = max(1, round(entry.ratio * style_rows))
        rng = random.Random(config.train.seed + index)
        # with replacement only when the file is smaller than asked for
        picked = rng.sample(rows, wanted) if wanted <= len(rows) else [rng.choice(rows) for _ in range(wanted)]
        yield source_name(config, entry), [Record(messages=r.messages, tools=r.tools, meta={**r.meta, "source": "mix"}) for r in picked]
