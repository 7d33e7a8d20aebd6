"""Plan a publish: which files of a run or a dataset folder a user needs, what is rewritten on the
way (a local base path in an adapter config becomes a hub id), and the generated card. Nothing
here touches the network; `stylewrap.publish.scan` checks the plan and `stylewrap.publish.hub`
sends it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Literal

from stylewrap.config import PublishConfig
from stylewrap.errors import InputError, Location
from stylewrap.publish.card import (
    PUBLIC_SITE,
    TRAINING_ROLE,
    DatasetFileStats,
    configuration_json,
    dataset_file_stats,
    hub_registrations,
    render_dataset_card,
    render_model_card,
)
from stylewrap.rundir import RUN_FILE, RunInfo, load_run, resolve

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")

RepoType = Literal["model", "dataset"]

# What a user of a model needs: weights, their index, model/adapter/generation configs, tokenizer.
MODEL_FILES = (
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json",
    "adapter_model.bin", "config.json", "generation_config.json", "adapter_config.json",
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "*.tiktoken", "vocab.json", "vocab.txt",
    "merges.txt", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json",
    "preprocessor_config.json", "additional_config.json",
)
DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
MANIFEST_NAMES = ("manifest.json", "*.manifest.json", "*_manifest.json")
GENERATED_NAMES = ("README.md", "configuration.json")

TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "training_args.bin",
                  "trainer_state.json", "*.ckpt", "global_step*")
ERROR_LOGS = ("errors.jsonl", "*_errors.jsonl", "*.errors.jsonl")
CACHES = (".cache", "__pycache__", ".ms_upload_cache", "*.pyc", ".git", ".ipynb_checkpoints")
# Reasons shown by --dry-run for what stays home; first match wins.
SKIP_REASONS = (
    (TRAINING_STATE, "training state (optimizer, scheduler, rng), not needed to use the model"),
    ((".env", ".env.*", "*.env"), "environment file: may hold secrets"),
    (("args.json",), "training arguments (local paths, maybe a hub token)"),
    (CACHES, "cache"),
    (("checkpoint-*",), "intermediate checkpoint"),
    (ERROR_LOGS, "failed items of a generation run (error log)"),
    (("runs", "logs", "*.log", "events.out.tfevents*"), "logs"),
    ((".*",), "hidden file"),
)
# files are read in pieces this big (the secret scan walks gigabytes of weights)
SCAN_CHUNK = 8 << 20


@dataclass(frozen=True)
class PlannedFile:
    """One file of the upload: a local file sent as-is, or bytes stylewrap generated or rewrote."""

    path_in_repo: str
    size: int
    source: Path | None = None
    content: bytes | None = None
    note: str = ""

    def chunks(self) -> Iterable[bytes]:
        if self.content is not None:
            yield self.content
            return
        with open(self.source, "rb") as handle:
            while chunk := handle.read(SCAN_CHUNK):
                yield chunk

    @property
    def origin(self) -> str:
        return str(self.source) if self.source is not None else f"<generated {self.path_in_repo}>"


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class UploadPlan:
    repo_id: str
    repo_type: RepoType
    private: bool
    license: str
    files: list[PlannedFile]
    skipped: list[SkippedFile] = field(default_factory=list)
    commit_message: str = "Upload with stylewrap"
    run_dir: Path | None = None
    # environment variables configured to hold a key: their values are scanned for too, whatever their names
    key_envs: list[str] = field(default_factory=list)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path_in_repo: str) -> PlannedFile | None:
        return next((f for f in self.files if f.path_in_repo == path_in_repo), None)


# ---------------------------------------------------------------- planning helpers


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _skip_reason(name: str, default: str) -> str:
    return next((reason for patterns, reason in SKIP_REASONS if _matches(name, patterns)), default)


def check_repo_id(repo_id: str | None, what: str) -> str:
    if not repo_id:
        raise InputError(f"no {what} repo given", hint=f"pass --repo OWNER/NAME or set publish.{what}_repo")
    if not REPO_ID.match(repo_id):
        raise InputError(f"repo {repo_id!r} is not OWNER/NAME", location=Location(field="--repo"))
    return repo_id


def _is_local_path(value: str) -> bool:
    windows_drive = re.match(r"^[A-Za-z]:[\\/]", value) is not None
    return value.startswith(("/", "./", "../", "~", "\\")) or windows_drive or Path(value).exists()


def _hub_id_or_none(value: str | None) -> str | None:
    return value if value and not _is_local_path(value) and REPO_ID.match(value) else None


def _rewrite_adapter_config(path: Path, base_model_id: str | None) -> PlannedFile:
    """adapter_config.json with `base_model_name_or_path` pointing at the hub, never a local folder."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", location=Location(path, exc.lineno)) from None
    current = config.get("base_model_name_or_path")
    note = ""
    if base_model_id and current != base_model_id:
        config["base_model_name_or_path"] = base_model_id
        note = f"base_model_name_or_path: {current} -> {base_model_id}"
    elif current and _is_local_path(current):
        raise InputError(
            f"points at a local base model ({current}), useless to anyone else",
            location=Location(path, field="base_model_name_or_path"),
            hint="pass --base-model-id OWNER/NAME (the base model's ModelScope id) or set publish.base_model_id",
        )
    content = (json.dumps(config, ensure_ascii=False, indent=2) + "\n").encode()
    return PlannedFile("adapter_config.json", len(content), content=content, note=note or "as trained")


def _generated(path_in_repo: str, content: bytes, note: str) -> PlannedFile:
    return PlannedFile(path_in_repo, len(content), content=content, note=note)


def _select_model_files(weights_dir: Path, base_model_id: str | None) -> tuple[list[PlannedFile], list[SkippedFile]]:
    files: list[PlannedFile] = []
    skipped: list[SkippedFile] = []
    config_path = weights_dir / "config.json"
    remote_code = config_path.is_file() and '"auto_map"' in config_path.read_text(encoding="utf-8", errors="replace")
    for entry in sorted(weights_dir.iterdir()):
        name = entry.name
        if entry.is_dir():
            skipped.append(SkippedFile(f"{name}/", _skip_reason(name, "folder: not part of the model")))
        elif name in GENERATED_NAMES:
            skipped.append(SkippedFile(name, "replaced by the one stylewrap generates"))
        elif name == "adapter_config.json":
            files.append(_rewrite_adapter_config(entry, base_model_id))
        elif _matches(name, MODEL_FILES):
            files.append(PlannedFile(name, entry.stat().st_size, source=entry))
        elif remote_code and name.endswith(".py"):
            files.append(PlannedFile(name, entry.stat().st_size, source=entry, note="custom model code (auto_map)"))
        else:
            skipped.append(SkippedFile(name, _skip_reason(name, "not needed to use the model")))
    if not any(_matches(f.path_in_repo, ("*.safetensors", "*.bin")) for f in files):
        raise InputError("no model weights (*.safetensors or *.bin) found", location=Location(weights_dir))
    return files, skipped


def _weights_dir(source: Path, variant: str, checkpoint: str | None = None) -> tuple[Path, RunInfo | None, Path | None]:
    if not source.exists():
        raise InputError("no such file or directory", location=Location(source))
    if not (source / RUN_FILE).is_file():
        if checkpoint:
            raise InputError("--checkpoint needs a run directory (with run.json)", location=Location(source))
        if variant != "auto":
            raise InputError(f"--{variant} needs a run directory (with run.json)", location=Location(source))
        return source, None, None
    run = load_run(source, checkpoint)
    if checkpoint not in (None, "", "last"):
        if variant == "merged":
            raise InputError("--checkpoint picks the adapter of a checkpoint; --merged is the final weights merged",
                             hint="export that checkpoint first (`stylewrap export RUN --checkpoint N --out DIR`) and publish DIR")
        variant = "adapter"
    if run.status != "succeeded":
        raise InputError(f"the run has not succeeded (status: {run.status})",
                         location=Location(source / RUN_FILE, field="status"),
                         hint="publish a finished run, or pass its weights folder to publish it as it is")
    choices = {"merged": run.merged_dir, "adapter": run.adapter_dir}
    if variant == "auto":
        merged = resolve(source, run.merged_dir)
        variant = "merged" if merged is not None and merged.is_dir() else "adapter"
    relative = choices[variant]
    weights = resolve(source, relative)
    if weights is None or not weights.is_dir():
        hint = "run `stylewrap export` first" if variant == "merged" else "did training finish?"
        raise InputError(f"the run has no {variant} weights ({relative or 'not recorded'})",
                         location=Location(source / RUN_FILE, field=f"{variant}_dir"), hint=hint)
    return weights, run, source


def _card_site(endpoint: str | None) -> str:
    """Links in a card point at the public site unless publishing to another ModelScope site."""
    return endpoint.rstrip("/") if endpoint and "modelscope" in endpoint else PUBLIC_SITE


# ---------------------------------------------------------------- plans


def plan_model(
    source: Path,
    repo_id: str,
    config: PublishConfig,
    *,
    variant: Literal["auto", "merged", "adapter"] = "auto",
    private: bool | None = None,
    license: str | None = None,
    base_model_id: str | None = None,
    dataset_repos: Iterable[str] = (),
    endpoint: str | None = None,
    checkpoint: str | None = None,
) -> UploadPlan:
    """What `publish model` would upload from a run directory or a model folder, card included."""
    from stylewrap.publish.ledger import published_as

    source = Path(source)
    weights, run, run_dir = _weights_dir(source, variant, checkpoint)
    base_id = base_model_id or config.base_model_id or _hub_id_or_none(run.base_model if run else None)
    files, skipped = _select_model_files(weights, base_id)
    kind = "adapter" if any(f.path_in_repo == "adapter_config.json" for f in files) else "full"
    license = license or config.license
    repos = list(dict.fromkeys([*dataset_repos, *([config.dataset_repo] if config.dataset_repo else []),
                                *([run.dataset["hub_repo"]] if run and run.dataset.get("hub_repo") else []),
                                # the very file the run trained on, published from this machine
                                *(published_as(Path(run.dataset["source"])) if run and run.dataset.get("source") else [])]))
    loss_image = None
    loss_path = resolve(run_dir, run.loss_png) if run and run.loss_png else None
    if loss_path is not None and loss_path.is_file():
        loss_image = "assets/loss.png"
        files.append(PlannedFile(loss_image, loss_path.stat().st_size, source=loss_path, note="loss curve"))
    card = render_model_card(
        repo_id=repo_id, kind=kind, run=run, run_dir=run_dir, base_model_id=base_id, dataset_repos=repos,
        license=license, language=config.language, loss_image=loss_image, site=_card_site(endpoint),
    )
    files.append(_generated("README.md", card.encode(), "model card"))
    files.append(_generated("configuration.json", configuration_json(), "ModelScope configuration"))
    what = f"{run.method} {kind} from run {run.run_id}" if run else f"{kind} weights"
    return UploadPlan(
        repo_id=repo_id, repo_type="model", private=config.private if private is None else private,
        license=license, files=files, skipped=skipped, commit_message=f"Upload {what} with stylewrap",
        run_dir=run_dir,
    )


def _find_manifest(source: Path, explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise InputError("manifest not found", location=Location(explicit))
        return explicit
    folder = source if source.is_dir() else source.parent
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and _matches(p.name, MANIFEST_NAMES))
    if source.is_file():
        own = [p for p in candidates if p.name.startswith(source.stem)]
        candidates = own or [p for p in candidates if p.name == "manifest.json"]
    return candidates[0] if candidates else None


def _load_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", location=Location(path, exc.lineno)) from None
    if not isinstance(data, dict):
        raise InputError("a generation manifest must be a JSON object", location=Location(path, 1))
    return data


def _training_file(record_files: dict[str, tuple[Path, str]], manifest: dict | None) -> str | None:
    """The file the card's usage snippets are about: the manifest's training file, else train.*."""
    named = (manifest or {}).get("files", {})
    hint = named.get("train") if isinstance(named, dict) else None
    if hint in record_files:
        return hint
    return next((name for name in record_files if Path(name).stem == "train"), next(iter(record_files), None))


def plan_dataset(
    source: Path,
    repo_id: str,
    config: PublishConfig,
    *,
    private: bool | None = None,
    license: str | None = None,
    manifest: Path | None = None,
    endpoint: str | None = None,
    stages: bool = False,
) -> UploadPlan:
    """What `publish dataset` would upload from a data file or folder, card included.

    A datagen folder sends its training file and manifest; its stages (topics, plain and stylized
    dialogues) only with `stages`, under stages/, so a loader reading every file mixes nothing in."""
    from stylewrap.adapters import FORMATS

    source = Path(source)
    if not source.exists():
        raise InputError("no such file or directory", location=Location(source))
    manifest_path = _find_manifest(source, Path(manifest) if manifest else None)
    manifest_data = _load_manifest(manifest_path) if manifest_path is not None else None
    named = (manifest_data or {}).get("files")
    stage_of = ({file: name for name, file in named.items() if name != "train" and isinstance(file, str)}
                if isinstance(named, dict) and source.is_dir() else {})
    candidates = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    root = source.parent if source.is_file() else source
    files: list[PlannedFile] = []
    skipped: list[SkippedFile] = []
    stats: list[DatasetFileStats] = []
    record_files: dict[str, tuple[Path, str]] = {}   # path in repo -> (local path, format)
    for path in candidates:
        relative = path.relative_to(root).as_posix()
        parts = relative.split("/")
        hidden_part = next((p for p in parts if p.startswith(".") or _matches(p, CACHES)), None)
        if manifest_path is not None and path.resolve() == manifest_path.resolve():
            continue
        if hidden_part is not None:
            skipped.append(SkippedFile(relative, _skip_reason(hidden_part, "hidden file")))
        elif path.name in GENERATED_NAMES:
            skipped.append(SkippedFile(relative, "replaced by the one stylewrap generates"))
        elif relative in stage_of and not _matches(path.name, ERROR_LOGS):
            if not stages:
                skipped.append(SkippedFile(relative, f"datagen stage ({stage_of[relative]}), not training rows: "
                                                     "--stages uploads it under stages/"))
                continue
            role = f"datagen stage: {stage_of[relative]}"
            files.append(PlannedFile(f"stages/{relative}", path.stat().st_size, source=path, note=role))
            stats.append(replace(dataset_file_stats(path, f"stages/{relative}"), role=role))
        elif path.suffix.lower() in DATASET_SUFFIXES and not _matches(path.name, ERROR_LOGS):
            files.append(PlannedFile(relative, path.stat().st_size, source=path))
            stats.append(dataset_file_stats(path, relative))
            if stats[-1].format in FORMATS:
                record_files[relative] = (path, stats[-1].format)
        else:
            skipped.append(SkippedFile(relative, _skip_reason(path.name, "not a data file")))
    if not files:
        raise InputError(f"no data files ({', '.join(DATASET_SUFFIXES)}) to publish", location=Location(source))
    manifest_name = None
    if manifest_path is not None:
        manifest_name = manifest_path.name
        files.append(PlannedFile(manifest_name, manifest_path.stat().st_size, source=manifest_path,
                                 note="generation manifest"))
    license = license or config.license
    training_file = _training_file(record_files, manifest_data)
    stats = [replace(s, role=TRAINING_ROLE) if s.path_in_repo == training_file else s for s in stats]
    files = [replace(f, note=TRAINING_ROLE) if f.path_in_repo == training_file else f for f in files]
    registrations = hub_registrations(repo_id, *record_files[training_file]) if training_file else None
    card = render_dataset_card(
        repo_id=repo_id, files=stats, registrations=registrations, manifest=manifest_data,
        manifest_name=manifest_name, license=license, language=config.language, site=_card_site(endpoint),
    )
    files.append(_generated("README.md", card.encode(), "dataset card"))
    rows = sum(s.rows or 0 for s in stats)
    return UploadPlan(
        repo_id=repo_id, repo_type="dataset", private=config.private if private is None else private,
        license=license, files=files, skipped=skipped, commit_message=f"Upload {rows} rows with stylewrap",
        key_envs=[name for name in [((manifest_data or {}).get("settings") or {}).get("api_key_env")] if isinstance(name, str)],
    )


def unlinked_training_file(run_dir: Path | None) -> Path | None:
    """The file a run trained on, when it is here and was not published from here: published, it
    is the dataset the model card links (`publish model` finds it by content)."""
    from stylewrap.publish.ledger import published_as

    if run_dir is None:
        return None
    dataset = RunInfo.load(run_dir).dataset
    source = Path(dataset["source"]) if dataset.get("source") and not dataset.get("hub_repo") else None
    return source if source is not None and source.is_file() and not published_as(source) else None
