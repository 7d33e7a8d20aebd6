"""Publish a trained model or a dataset to ModelScope, with a generated card.

Neither backend does this well: LLaMA-Factory cannot push to ModelScope, and `swift export
--push_to_hub` breaks on modelscope 1.40 and needs git-lfs. We call the `modelscope` SDK directly
(`HubApi.create_repo`, `upload_folder`), imported only when something is really uploaded.

Steps: plan (choose the files a user needs, rewrite what must change, render the card), scan
every byte that would leave the machine for secrets, then create the repo PRIVATE unless asked
otherwise and verify it, and upload the staged folder in one commit. The SDK's `upload_folder`
would create a missing repo as public, so the repo always exists before it runs.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import re
import struct
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from stylewrap.config import PublishConfig
from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_bytes
from stylewrap.publish.card import (
    PUBLIC_SITE,
    DatasetFileStats,
    configuration_json,
    dataset_file_stats,
    hub_registrations,
    render_dataset_card,
    render_model_card,
)
from stylewrap.rundir import RUN_FILE, RunInfo, resolve
from stylewrap.secrets import get_secret, redact, secret_values

TOKEN_ENV = "MODELSCOPE_API_TOKEN"
ENDPOINT_ENV = "MODELSCOPE_ENDPOINT"
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")

RepoType = Literal["model", "dataset"]
Report = Callable[[str], None]

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

# Key-shaped strings; a match anywhere in a file stops the upload. Names are safe to print.
# Each pattern has lowercase anchors: a fast `bytes.find` for them picks the few places worth a
# regex, so gigabytes of weights scan at memory speed instead of regex speed.
KEY_PATTERNS = (
    ("an OpenAI-style API key", (b"sk-",),
     re.compile(rb"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("a ModelScope token", (b"ms-",),
     re.compile(rb"ms-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("a Hugging Face token", (b"hf_",), re.compile(rb"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}")),
    ("a GitHub token", (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
     re.compile(rb"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}")),
    ("an AWS access key", (b"akia",), re.compile(rb"(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])")),
    ("a private key", (b"private key-----",), re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a secret assignment", (b"api_key", b"api-key", b"apikey", b"secret", b"access_token", b"access-token",
                             b"auth_token", b"auth-token", b"password"),
     re.compile(rb"(?i)(?:api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|password)"
                rb"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9_\-./+]{16,}")),
)
ANCHOR_REACH = 64      # how far before an anchor a match may start (e.g. "client_" before "secret")
MATCH_REACH = 512      # how far after it a match may end
SCAN_CHUNK = 8 << 20
SCAN_OVERLAP = 4096


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

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path_in_repo: str) -> PlannedFile | None:
        return next((f for f in self.files if f.path_in_repo == path_in_repo), None)


@dataclass
class PublishResult:
    plan: UploadPlan
    dry_run: bool
    url: str | None = None
    created: bool = False
    visibility: str | None = None
    notes: list[str] = field(default_factory=list)


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


def _weights_dir(source: Path, variant: str) -> tuple[Path, RunInfo | None, Path | None]:
    if not source.exists():
        raise InputError("no such file or directory", location=Location(source))
    if not (source / RUN_FILE).is_file():
        if variant != "auto":
            raise InputError(f"--{variant} needs a run directory (with run.json)", location=Location(source))
        return source, None, None
    run = RunInfo.load(source)
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
) -> UploadPlan:
    """What `publish model` would upload from a run directory or a model folder, card included."""
    source = Path(source)
    weights, run, run_dir = _weights_dir(source, variant)
    base_id = base_model_id or config.base_model_id or _hub_id_or_none(run.base_model if run else None)
    files, skipped = _select_model_files(weights, base_id)
    kind = "adapter" if any(f.path_in_repo == "adapter_config.json" for f in files) else "full"
    license = license or config.license
    repos = list(dict.fromkeys([*dataset_repos, *([config.dataset_repo] if config.dataset_repo else []),
                                *([run.dataset["hub_repo"]] if run and run.dataset.get("hub_repo") else [])]))
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
) -> UploadPlan:
    """What `publish dataset` would upload from a data file or folder, card included."""
    from stylewrap.adapters import FORMATS

    source = Path(source)
    if not source.exists():
        raise InputError("no such file or directory", location=Location(source))
    manifest_path = _find_manifest(source, Path(manifest) if manifest else None)
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
        elif path.suffix.lower() in DATASET_SUFFIXES and not _matches(path.name, ERROR_LOGS):
            files.append(PlannedFile(relative, path.stat().st_size, source=path))
            stats.append(dataset_file_stats(path, relative))
            if stats[-1].format in FORMATS:
                record_files[relative] = (path, stats[-1].format)
        else:
            skipped.append(SkippedFile(relative, _skip_reason(path.name, "not a data file")))
    if not files:
        raise InputError(f"no data files ({', '.join(DATASET_SUFFIXES)}) to publish", location=Location(source))
    manifest_data = None
    manifest_name = None
    if manifest_path is not None:
        manifest_data = _load_manifest(manifest_path)
        manifest_name = manifest_path.name
        files.append(PlannedFile(manifest_name, manifest_path.stat().st_size, source=manifest_path,
                                 note="generation manifest"))
    license = license or config.license
    training_file = _training_file(record_files, manifest_data)
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
    )


# ---------------------------------------------------------------- secret scan


def _line_of(data: bytes, offset: int, lines_before: int) -> int:
    return lines_before + data.count(b"\n", 0, offset) + 1


def _find_key(data: bytes) -> tuple[str, int] | None:
    lowered = data.lower()
    for kind, anchors, pattern in KEY_PATTERNS:
        for anchor in anchors:
            hit = lowered.find(anchor)
            while hit >= 0:
                match = pattern.search(data, max(0, hit - ANCHOR_REACH), hit + MATCH_REACH)
                if match is not None:
                    return kind, match.start()
                hit = lowered.find(anchor, hit + 1)
    return None


def _text_scope(planned: PlannedFile) -> int | None:
    """How many leading bytes can hold text; None for all. Past its JSON header a safetensors
    file is raw numbers by definition, so key patterns (slow) are not run there; the literal
    search for known secret values (fast) still covers every byte."""
    if planned.source is None or not planned.path_in_repo.endswith(".safetensors"):
        return None
    with open(planned.source, "rb") as handle:
        head = handle.read(8)
    return 8 + struct.unpack("<Q", head)[0] if len(head) == 8 else None


def scan_for_secrets(plan: UploadPlan, extra_secrets: Iterable[str] = ()) -> None:
    """Refuse the whole upload if any file holds a known secret value or a key-like string."""
    literals = [s.encode() for s in secret_values(extra=extra_secrets)]
    for planned in plan.files:
        scope = _text_scope(planned)
        consumed = 0       # bytes of the file before the current chunk
        lines_before = 0
        tail = b""
        for chunk in planned.chunks():
            window = tail + chunk
            window_start = consumed - len(tail)
            base_lines = lines_before - tail.count(b"\n")
            for secret in literals:
                offset = window.find(secret)
                if offset >= 0:
                    raise InputError(
                        "refusing to upload: the file contains the value of a secret environment variable",
                        location=Location(planned.origin, _line_of(window, offset, base_lines)),
                        hint="remove it from the file; secrets belong in the environment only",
                    )
            text = window if scope is None else window[:max(0, scope - window_start)]
            found = _find_key(text) if text else None
            if found is not None:
                kind, offset = found
                raise InputError(
                    f"refusing to upload: the file contains what looks like {kind}",
                    location=Location(planned.origin, _line_of(window, offset, base_lines)),
                    hint="remove or rotate it; nothing was uploaded",
                )
            consumed += len(chunk)
            lines_before += chunk.count(b"\n")
            tail = window[-SCAN_OVERLAP:]


# ---------------------------------------------------------------- the hub


def _hub_errors():
    from modelscope_hub import errors

    return errors


def _retrying(action: str, call: Callable[[], Any], config: PublishConfig, report: Report,
              sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run a hub call, retrying 5xx, 429 and network failures with exponential backoff and jitter."""
    errors = _hub_errors()
    transient = (errors.ServerError, errors.RateLimitError, errors.NetworkError)
    attempt = 1
    while True:
        try:
            return call()
        except transient as exc:
            if attempt >= config.max_retries:
                raise RunFailed(f"{action} failed after {attempt} attempts: {_describe(exc)}",
                                hint="the hub may be down; run the same command again later") from None
            delay = config.retry_backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            report(f"{action}: {_describe(exc)}; retry {attempt}/{config.max_retries - 1} in {delay:.1f}s")
            sleep(delay)
            attempt += 1


def _describe(exc: BaseException) -> str:
    return redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _translate(exc: BaseException, plan: UploadPlan, details: Iterable[str] = ()) -> Exception:
    """A hub failure as a one-line stylewrap error that says what to do. `details` are the per-batch
    errors an upload reported: the SDK's final "N files failed" error does not carry its cause."""
    errors = _hub_errors()
    details = [redact(d) for d in details]
    said = " ".join([str(exc), *details])
    if isinstance(exc, errors.AuthenticationError) or "[E3001]" in said:
        return InputError(f"ModelScope rejected the token: {_describe(exc)}",
                          hint=f"set {TOKEN_ENV} to a valid token with write permission "
                               "(https://modelscope.cn/my/myaccesstoken)")
    if isinstance(exc, errors.PermissionDeniedError) or "[E3002]" in said:
        return InputError(f"no permission to write to {plan.repo_type} {plan.repo_id}",
                          hint="the owner must be you or an organization you may publish to, "
                               "with a token that has write permission")
    if isinstance(exc, errors.QuotaExceededError):
        return RunFailed(f"ModelScope quota exceeded: {_describe(exc)}")
    cause = f" (first error: {details[0]})" if details else ""
    return RunFailed(f"ModelScope: {_describe(exc)}{cause}")


def _api(token: str | None, endpoint: str | None):
    from modelscope.hub.api import HubApi

    return HubApi(endpoint=endpoint, token=token)


def _login_token() -> str | None:
    """The token `modelscope login` stored, for when none is in the environment."""
    from modelscope_hub.config import HubConfig

    return HubConfig().token or None


class _UploadWatch:
    """The SDK's upload progress callback: reports progress, keeps each failed batch's error."""

    def __init__(self, report: Report):
        self.report = report
        self.errors: list[str] = []

    def __call__(self, event: dict) -> None:
        if event.get("error"):
            self.errors.append(str(event["error"]))
        self.report(f"sent {event['uploaded_bytes']}/{event['total_bytes']} bytes, "
                    f"committed {event['committed_files']}/{event['total_files']} files")


def _is_private(info: Any) -> bool:
    from modelscope_hub.constants import Visibility

    return info.visibility == Visibility.PRIVATE or info.private is True


def _ensure_repo(api: Any, plan: UploadPlan, config: PublishConfig, report: Report) -> tuple[bool, bool]:
    """Create the repo (private unless asked) or reuse an existing one; returns (created, is_private)."""
    errors = _hub_errors()

    def exists() -> bool:
        return api.repo_exists(plan.repo_id, repo_type=plan.repo_type, re_raise=True)

    created = False
    if not _retrying("looking up the repo", exists, config, report):
        report(f"creating {'private' if plan.private else 'public'} {plan.repo_type} repo {plan.repo_id}")

        def create() -> None:
            api.create_repo(plan.repo_id, repo_type=plan.repo_type,
                            visibility="private" if plan.private else "public", license=plan.license)

        try:
            _retrying("creating the repo", create, config, report)
            created = True
        except errors.AlreadyExistsError:
            # a retried create whose first attempt went through answers "exists": then it is ours
            if not _retrying("looking up the repo", exists, config, report):
                raise InputError(
                    f"the name {plan.repo_id} is taken by a {plan.repo_type} you cannot see",
                    location=Location(field="--repo"), hint="choose another name or owner",
                ) from None
            created = True
    info = _retrying("reading the repo", lambda: api.get_repo(plan.repo_id, plan.repo_type), config, report)
    private = _is_private(info)
    if created and plan.private and not private:
        raise RunFailed(f"{plan.repo_id} was created public although private was asked; nothing was uploaded",
                        hint="make it private on the website, then run again")
    return created, private


def _stage(plan: UploadPlan, folder: Path) -> None:
    """The upload tree: generated files written, local files linked (no copy of big weights)."""
    for planned in plan.files:
        target = folder / planned.path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        if planned.content is not None:
            atomic_write_bytes(target, planned.content)
        else:
            os.symlink(planned.source.resolve(), target)


def _record_in_run(plan: UploadPlan, url: str) -> None:
    if plan.run_dir is None:
        return
    run = RunInfo.load(plan.run_dir)
    run.extra.setdefault("published", []).append({
        "repo": plan.repo_id, "url": url, "private": plan.private,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    run.save(plan.run_dir)


def upload(plan: UploadPlan, config: PublishConfig, *, report: Report = lambda _msg: None) -> PublishResult:
    """Create or reuse the repo, then push the plan's files in one commit."""
    token = get_secret(TOKEN_ENV) or _login_token()
    endpoint = os.environ.get(ENDPOINT_ENV) or None
    scan_for_secrets(plan, extra_secrets=[token] if token else [])
    errors = _hub_errors()
    api = _api(token, endpoint)
    watch = _UploadWatch(report)
    try:
        try:
            user = _retrying("checking the token", api.whoami, config, report)
        except errors.AuthenticationError as exc:
            raise InputError(
                f"no valid ModelScope token ({_describe(exc)})",
                hint=f"export {TOKEN_ENV}=... (https://modelscope.cn/my/myaccesstoken) or run `modelscope login`",
            ) from None
        report(f"signed in as {user.username}")
        created, private = _ensure_repo(api, plan, config, report)
        with tempfile.TemporaryDirectory(prefix="stylewrap-publish-") as staging:
            _stage(plan, Path(staging))
            report(f"uploading {len(plan.files)} files ({plan.total_size} bytes) to {plan.repo_id}")
            _retrying("uploading", lambda: api.upload_folder(
                repo_id=plan.repo_id, folder_path=staging, repo_type=plan.repo_type,
                commit_message=plan.commit_message, use_cache=False, disable_tqdm=True,
                progress_callback=watch,
            ), config, report)
    except errors.HubError as exc:
        raise _translate(exc, plan, watch.errors) from None
    url = f"{(endpoint or PUBLIC_SITE).rstrip('/')}/{plan.repo_type}s/{plan.repo_id}"
    _record_in_run(plan, url)
    notes = []
    if not created and private != plan.private:
        notes.append(f"the repo already existed and stays {'private' if private else 'public'}; "
                     "change its visibility on the website")
    return PublishResult(plan=plan, dry_run=False, url=url, created=created,
                         visibility="private" if private else "public", notes=notes)


# ---------------------------------------------------------------- entry points (one per CLI command)


def publish_model(source: Path, config: PublishConfig, *, repo_id: str | None = None, dry_run: bool = False,
                  report: Report = lambda _msg: None, **options: Any) -> PublishResult:
    plan = plan_model(source, check_repo_id(repo_id or config.model_repo, "model"), config,
                      endpoint=os.environ.get(ENDPOINT_ENV), **options)
    return _finish(plan, config, dry_run, report)


def publish_dataset(source: Path, config: PublishConfig, *, repo_id: str | None = None, dry_run: bool = False,
                    report: Report = lambda _msg: None, **options: Any) -> PublishResult:
    plan = plan_dataset(source, check_repo_id(repo_id or config.dataset_repo, "dataset"), config,
                        endpoint=os.environ.get(ENDPOINT_ENV), **options)
    return _finish(plan, config, dry_run, report)


def _finish(plan: UploadPlan, config: PublishConfig, dry_run: bool, report: Report) -> PublishResult:
    if dry_run:
        token = get_secret(TOKEN_ENV)
        scan_for_secrets(plan, extra_secrets=[token] if token else [])
        return PublishResult(plan=plan, dry_run=True, visibility="private" if plan.private else "public")
    return upload(plan, config, report=report)
