"""Model and dataset cards (README.md with ModelScope front-matter) built from what a run left behind.

A model card tells the whole story of a run directory: base model, backend and version, the exact
training command and rendered config, hyperparameters, the dataset's hub link, the loss curve,
base-vs-tuned samples from `stylewrap compare`, intended use, limits and license. A dataset card
gives formats, row counts and how the data was generated (from the generation manifest).

Inputs other commands write, read tolerantly because a missing piece only shortens the card:
- eval/compare reports (`RunInfo.compare_reports`; a report.md/.html is read from the eval.json
  beside it (`stylewrap eval`/`compare`), else from its report.json twin (older compare reports:
  an object with a `rows` (or `samples`) list, or a bare list; each row has `question` (or
  `prompt`), `base` and `tuned`). The newest eval.json with metrics gives the card its table.
- a dataset's generation manifest (JSON, `stylewrap datagen` writes `manifest.json`): any object;
  `teacher_model`, `preset`, `prompts_sha256` are named in the card, every key is listed.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stylewrap import __version__
from stylewrap.backends.render import render
from stylewrap.errors import DataError
from stylewrap.rundir import RunInfo, resolve
from stylewrap.secrets import redact

MAX_SAMPLES = 5
MAX_CONFIG_CHARS = 20_000
PUBLIC_SITE = "https://modelscope.cn"

# ModelScope reads this file to know how to load a repo; `swift export` writes the same content.
CONFIGURATION_JSON = {"framework": "pytorch", "task": "text-generation", "allow_remote": True}


def front_matter(meta: dict[str, Any]) -> str:
    present = {k: v for k, v in meta.items() if v not in (None, [], {})}
    body = yaml.safe_dump(present, sort_keys=False, allow_unicode=True)
    return f"---\n{body}---\n"


def hub_url(repo_id: str, repo_type: str, site: str = PUBLIC_SITE) -> str:
    return f"{site.rstrip('/')}/{repo_type}s/{repo_id}"


def configuration_json() -> bytes:
    return (json.dumps(CONFIGURATION_JSON, indent=2) + "\n").encode()


# ---------------------------------------------------------------- model card


def _local_paths(run_dir: Path | None, run: RunInfo | None, base_model_id: str | None) -> dict[str, str]:
    """Local paths a card would otherwise show (and with them a user name): what replaces each."""
    paths: dict[str, str] = {}
    if run_dir is not None:
        paths[str(run_dir)] = paths[str(Path(run_dir).resolve())] = "$RUN_DIR"
    if run is not None and Path(run.base_model).is_absolute():
        paths[run.base_model] = base_model_id or Path(run.base_model).name
    return paths


def _scrub(text: str, paths: dict[str, str]) -> str:
    for path in sorted(paths, key=len, reverse=True):
        text = text.replace(path, paths[path])
    return redact(text)


# Environment plumbing stylewrap adds to a backend's command line; a reader does not type it.
PLUMBING_ENV = ("PATH", "PYTHONUNBUFFERED", "PYTHONPATH", "PYTHONNOUSERSITE", "VIRTUAL_ENV")


def card_command(command: str) -> str:
    """The training command as a reader would type it in the run directory: no `cd`, no PATH
    plumbing, the backend's executable by name rather than by its path in a local venv."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if len(words) > 3 and words[0] == "cd" and words[2] == "&&":
        words = words[3:]
    env = []
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        assignment = words.pop(0)
        if assignment.split("=", 1)[0] not in PLUMBING_ENV:
            env.append(assignment)
    if words and "/" in words[0]:
        words[0] = Path(words[0]).name
    return shlex.join([*env, *words])


def _read_config_files(run_dir: Path, run: RunInfo, paths: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for relative in run.config_files:
        path = resolve(run_dir, relative)
        # command.sh repeats the command the card already shows, with local PATH plumbing
        if path is None or not path.is_file() or path.suffix == ".sh":
            continue
        text = _scrub(path.read_text(encoding="utf-8", errors="replace"), paths)
        if len(text) > MAX_CONFIG_CHARS:
            text = text[:MAX_CONFIG_CHARS] + "\n# ... (truncated)\n"
        language = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".sh": "shell"}.get(path.suffix, "")
        out.append({"name": relative, "language": language, "text": text.rstrip("\n")})
    return out


def _read_report(run_dir: Path, relative: str) -> Any:
    """The JSON behind a listed report: eval.json beside it, else its report.json twin."""
    path = resolve(run_dir, relative)
    if path is None:
        return None
    candidates = [path] if path.suffix == ".json" else [path.parent / "eval.json", path.with_suffix(".json")]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                return None
    return None


def _eval_as_compare(report: dict) -> dict:
    """An eval.json seen as a compare report: the base model told the style (else the plain base)
    against the tuned model."""
    info = report.get("variant_info") or {}
    base = "base+style" if "base+style" in info else "base"
    if base not in info or "tuned" not in info:
        return {"rows": []}
    rows = [{"question": row.get("question"), "base": row["variants"].get(base, {}).get("answer"),
             "tuned": row["variants"].get("tuned", {}).get("answer")}
            for row in report.get("rows", []) if isinstance(row, dict) and isinstance(row.get("variants"), dict)]
    return {"rows": rows, "base_system": info[base].get("system")}


def compare_samples(run_dir: Path, run: RunInfo, limit: int = MAX_SAMPLES) -> tuple[list[dict[str, str]], str | None]:
    """A few base-vs-tuned answers from the run's compare/eval reports, in report order, and the
    system prompt the base model got (the tutorial's fair comparison tells the base model the style)."""
    samples: list[dict[str, str]] = []
    base_system: str | None = None
    for relative in run.compare_reports:
        report = _read_report(run_dir, relative)
        if isinstance(report, dict) and "variant_info" in report:
            report = _eval_as_compare(report)
        if report is None:
            continue
        rows = next((report[k] for k in ("rows", "samples") if k in report), []) if isinstance(report, dict) else report
        if isinstance(report, dict) and isinstance(report.get("base_system"), str) and base_system is None:
            base_system = report["base_system"]
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            prompt = row.get("question", row.get("prompt"))
            if all(isinstance(v, str) and v.strip() for v in (prompt, row.get("base"), row.get("tuned"))):
                samples.append({"prompt": prompt, "base": row["base"], "tuned": row["tuned"]})
            if len(samples) >= limit:
                return samples, base_system
    return samples, base_system


def eval_table(run_dir: Path, run: RunInfo) -> dict | None:
    """The metrics table of the run's newest eval report that has one (`stylewrap eval`)."""
    from stylewrap.eval.report import table

    for relative in reversed(run.compare_reports):
        report = _read_report(run_dir, relative)
        if isinstance(report, dict) and isinstance(report.get("variants"), dict) and report["variants"]:
            classifier = report.get("classifier") or {}
            return {"names": list(report["variants"]), "rows": table(report), "probes": report.get("probes"),
                    "probe_set": Path(str(report.get("probe_set", ""))).name, "reference": report.get("reference"),
                    "auc": classifier.get("held_out_auc"), "judge": (report.get("judge") or {}).get("model")}
    return None


def _usage_commands(kind: str, repo_id: str, base_model: str | None, template: str | None) -> list[dict[str, str]]:
    base = base_model or "BASE_MODEL_ID"
    lf_template = f" \\\n    --template {template}" if template else ""
    if kind == "adapter":
        return [
            {"title": "ms-swift", "command": f"swift infer --model {base} --adapters {repo_id} --use_hf false"},
            {
                "title": "LLaMA-Factory",
                "command": f"USE_MODELSCOPE_HUB=1 llamafactory-cli chat \\\n    --model_name_or_path {base} \\\n"
                f"    --adapter_name_or_path {repo_id}{lf_template}",
            },
        ]
    return [
        {"title": "ms-swift", "command": f"swift infer --model {repo_id} --use_hf false"},
        {"title": "ms-swift (OpenAI-compatible server)", "command": f"swift deploy --model {repo_id} --use_hf false"},
        {"title": "LLaMA-Factory",
         "command": f"USE_MODELSCOPE_HUB=1 llamafactory-cli chat \\\n    --model_name_or_path {repo_id}{lf_template}"},
    ]


# run options a published stylewrap.yaml leaves out: local paths, and what the machine decided
_NOT_RETRAINED = frozenset(("model", "output_dir", "deepspeed", "backend", "extra_args", "resume_from_checkpoint"))


def retrain_config(run: RunInfo, base_model_id: str | None, dataset_repos: list[str]) -> str:
    """A stylewrap.yaml that trains this model again from the hub: the published dataset (the
    backend downloads it) and the base model's hub id, with the run's own values."""
    import yaml

    from stylewrap.config import TrainConfig

    hyper = run.hyperparameters
    train = {"backend": run.backend, "model": base_model_id or "BASE_MODEL_HUB_ID", "auto": False}
    train.update({key: value for key, value in hyper.items()
                  if key in TrainConfig.model_fields and key not in _NOT_RETRAINED and value is not None})
    data = {"train_file": dataset_repos[0] if dataset_repos else "DATASET_REPO_ID (publish it: stylewrap publish dataset)"}
    if run.dataset.get("format"):
        data["format"] = run.dataset["format"]
    if hyper.get("val_size"):
        data["val_size"] = hyper["val_size"]
    config = {"data": data, "train": train}
    if hyper.get("system"):
        config["style"] = {"system_prompt": hyper["system"]}
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip()


def render_model_card(
    *,
    repo_id: str,
    kind: str,
    run: RunInfo | None,
    run_dir: Path | None,
    base_model_id: str | None,
    dataset_repos: list[str],
    license: str,
    language: list[str],
    loss_image: str | None,
    site: str = PUBLIC_SITE,
) -> str:
    """README.md for a model repo. `kind` is "adapter" (LoRA weights) or "full" (merged or full weights)."""
    meta = {
        "frameworks": ["Pytorch"],
        "license": license,
        "tasks": ["text-generation"],
        "language": language,
        "base_model": [base_model_id] if base_model_id else None,
        "base_model_relation": ("adapter" if kind == "adapter" else "finetune") if base_model_id else None,
        "datasets": {"train": dataset_repos} if dataset_repos else None,
        "tags": ["stylewrap", "style-transfer", *([run.backend, run.method] if run else [])],
    }
    paths = _local_paths(run_dir, run, base_model_id)
    samples, base_system = compare_samples(run_dir, run) if run and run_dir else ([], None)
    evaluation = eval_table(run_dir, run) if run and run_dir else None
    dataset = dict(run.dataset) if run else {}
    if dataset.get("path"):
        dataset["file"] = Path(dataset["path"]).name   # the name says enough; the folder is the user's own
    context = {
        "front_matter": front_matter(meta),
        "repo_id": repo_id,
        "name": repo_id.split("/", 1)[-1],
        "kind": kind,
        "run": run,
        "base_model": base_model_id or (_scrub(run.base_model, paths) if run else None),
        "base_model_link": hub_url(base_model_id, "model", site) if base_model_id else None,
        "dataset": dataset,
        "dataset_links": [{"repo": r, "url": hub_url(r, "dataset", site)} for r in dataset_repos],
        "command": _scrub(card_command(run.command), paths) if run else None,
        "retrain": retrain_config(run, base_model_id, dataset_repos) if run else None,
        "configs": _read_config_files(run_dir, run, paths) if run and run_dir else [],
        "hyperparameters": sorted((k, _scrub(v, paths) if isinstance(v, str) else v)
                                  for k, v in (run.hyperparameters if run else {}).items()),
        "metrics": sorted((run.metrics if run else {}).items()),
        "loss_image": loss_image,
        "samples": samples,
        "evaluation": evaluation,
        "base_system": base_system,
        "usage": _usage_commands(kind, repo_id, base_model_id, run.template if run else None),
        "license": license,
        "version": __version__,
    }
    return render("cards/model.md.j2", **context)


# ---------------------------------------------------------------- dataset card


TRAINING_ROLE = "the training file"


@dataclass(frozen=True)
class DatasetFileStats:
    path_in_repo: str
    size: int
    format: str | None      # sharegpt | messages | alpaca | qa | csv | ... ; None when unknown
    rows: int | None
    role: str = ""          # what the file is for a reader: the training file, a datagen stage, ...


def dataset_file_stats(path: Path, path_in_repo: str) -> DatasetFileStats:
    """Row count and record format of one data file, streaming (a big file is never loaded whole).

    Record files (JSONL, JSON arrays) are read through `stylewrap.adapters`, so a bad row stops
    the publish with its file:line: field instead of going up broken.
    """
    from stylewrap.adapters import detect_format, read_records
    from stylewrap.adapters.files import is_array_file

    size = path.stat().st_size
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or (suffix == ".json" and is_array_file(path)):
        try:
            fmt = detect_format(path)
        except DataError:
            # rows that are no chat records (e.g. datagen's topics.jsonl): published as they are
            with path.open("rb") as handle:
                return DatasetFileStats(path_in_repo, size, None, sum(1 for line in handle if line.strip()))
        return DatasetFileStats(path_in_repo, size, fmt, sum(1 for _ in read_records(path, fmt)))
    if suffix == ".txt":
        with path.open("rb") as handle:
            return DatasetFileStats(path_in_repo, size, "text", sum(1 for line in handle if line.strip()))
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            lines = sum(1 for _ in csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ","))
        return DatasetFileStats(path_in_repo, size, suffix[1:], max(0, lines - 1))
    return DatasetFileStats(path_in_repo, size, suffix[1:] or None, None)


_MANIFEST_FIELDS = {
    "teacher": ("teacher_model", "teacher", "model"),
    "style": ("style_preset", "style", "preset"),
    "prompts_hash": ("prompts_sha256", "prompts_hash"),
}


def _first_key(manifest: dict, keys: tuple[str, ...]) -> Any:
    return next((manifest[k] for k in keys if manifest.get(k) not in (None, "")), None)


def hub_registrations(repo_id: str, local_path: Path, fmt: str) -> list[tuple[str, str]]:
    """How each registered backend reads the published file from the hub: (how, JSON to paste),
    from each backend unit's `hub_registration` (LLaMA-Factory: a dataset_info.json entry with
    `ms_hub_url`; ms-swift: a `--custom_dataset_info` entry with `ms_dataset_id`)."""
    from stylewrap.backends.base import get_backend
    from stylewrap.backends.registry import backend_names

    return [get_backend(name).hub_registration(repo_id, local_path, fmt) for name in backend_names()]


def render_dataset_card(
    *,
    repo_id: str,
    files: list[DatasetFileStats],
    registrations: list[tuple[str, str]] | None,
    manifest: dict | None,
    manifest_name: str | None,
    license: str,
    language: list[str],
    site: str = PUBLIC_SITE,
) -> str:
    formats = sorted({f.format for f in files if f.format})
    meta = {
        "license": license,
        "task_categories": ["text-generation"],
        "language": language,
        "tags": ["stylewrap", "style-transfer", "dialogue", *formats],
    }
    manifest = manifest or {}
    scalars = [(k, v) for k, v in manifest.items() if isinstance(v, (str, int, float, bool)) and v is not None]
    nested = [(k, json.dumps(v, ensure_ascii=False)) for k, v in manifest.items() if isinstance(v, (dict, list))]
    # a datagen stage is no extra training data: the count is the training rows'
    counted = [f for f in files if not f.role.startswith("datagen stage")]
    total_rows = sum(f.rows for f in counted if f.rows is not None)
    context = {
        "front_matter": front_matter(meta),
        "repo_id": repo_id,
        "name": repo_id.split("/", 1)[-1],
        "url": hub_url(repo_id, "dataset", site),
        "files": files,
        "total_rows": total_rows,
        "formats": formats,
        "registrations": registrations,
        "has_stages": len(counted) < len(files),
        "training_file": next((f.path_in_repo for f in files if f.role == TRAINING_ROLE), None),
        "manifest_name": manifest_name,
        "generation": {name: _first_key(manifest, keys) for name, keys in _MANIFEST_FIELDS.items()},
        "manifest_scalars": scalars,
        "manifest_nested": nested,
        "license": license,
        "version": __version__,
    }
    return render("cards/dataset.md.j2", **context)
