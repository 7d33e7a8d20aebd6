"""The run directory: everything one training run leaves behind, described by `run.json`.

Written by `stylewrap train`, read by `runs`, `export`, `compare`, `deploy` and `publish`, so a
later command needs nothing but the folder. Layout (paths relative to the run directory):

    run.json            this record
    config/             rendered backend config(s) and the exact command (`command.sh`)
    data/               the converted dataset and its registration
    output/             the backend's output_dir (adapter or full weights, checkpoints)
    train.log           the backend's full output, secrets scrubbed
    loss.png            loss curve
    merged/             `stylewrap export` result (merged weights), when made
    eval/, compare/     `stylewrap eval` / `stylewrap compare` reports (eval.json, report.md/.html), when made
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stylewrap.errors import InputError, Location
from stylewrap.fsutil import atomic_write_json

RUN_FILE = "run.json"


@dataclass
class RunInfo:
    run_id: str
    backend: str                      # registry name: "llamafactory" | "swift"
    backend_version: str | None
    base_model: str                   # path or hub id as given
    method: str                       # lora | qlora | full
    template: str | None
    command: str                      # the exact shell line that trained (secrets redacted)
    config_files: list[str] = field(default_factory=list)      # rendered configs, relative
    dataset: dict[str, Any] = field(default_factory=dict)      # {"name", "path", "format", "rows", "source", "hub_repo"}
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    status: str = "created"           # created | running | succeeded | failed; a Slurm job: submitted, cancelled
    created_at: str | None = None
    finished_at: str | None = None
    adapter_dir: str | None = None    # relative: the trained adapter (LoRA) or full weights
    merged_dir: str | None = None     # relative: merged model, after export
    loss_png: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)      # final train/eval loss, steps, runtime
    compare_reports: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, run_dir: Path) -> Path:
        return atomic_write_json(Path(run_dir) / RUN_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> "RunInfo":
        path = Path(run_dir) / RUN_FILE
        if not path.is_file():
            raise InputError("not a stylewrap run directory (no run.json)", location=Location(run_dir))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", location=Location(path, exc.lineno)) from None
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown keys {sorted(unknown)}", location=Location(path))
        return cls(**data)


def resolve(run_dir: Path, relative: str | None) -> Path | None:
    return None if relative is None else (Path(run_dir) / relative)


# ---------------------------------------------------------------- choosing a checkpoint


def checkpoints(run_dir: Path) -> dict[int, Path]:
    """step -> checkpoint-N folder anywhere under output/ (ms-swift nests them in v0-<time>/)."""
    found = {}
    for path in (Path(run_dir) / "output").rglob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if path.is_dir() and suffix.isdigit():
            found[int(suffix)] = path
    return found


def _eval_losses(kept: dict[int, Path]) -> dict[int, float]:
    """step -> eval loss, from the trainer_state.json the HF Trainer writes into every checkpoint
    (both backends train through it); the newest one holds the whole history."""
    losses: dict[int, float] = {}
    for step in sorted(kept, reverse=True):
        state = kept[step] / "trainer_state.json"
        if not state.is_file():
            continue
        for entry in json.loads(state.read_text(encoding="utf-8")).get("log_history", []):
            if "eval_loss" in entry and "step" in entry:
                losses[int(entry["step"])] = float(entry["eval_loss"])
        break
    return losses


def checkpoint_path(run_dir: Path, info: RunInfo, choice: str | None) -> str | None:
    """The run-relative weights folder for `--checkpoint`: None/'last' the run's final weights."""
    if choice in (None, "", "last"):
        return info.adapter_dir
    run_dir = Path(run_dir)
    kept = checkpoints(run_dir)
    where = Location(run_dir / "output", field="--checkpoint")
    if choice == "best":
        losses = {step: loss for step, loss in _eval_losses(kept).items() if step in kept}
        if not losses:
            raise InputError("no kept checkpoint has an eval loss to choose the best by", location=where,
                             hint="train with data.val_size or data.val_file, or name a step: --checkpoint N")
        step = min(losses, key=lambda s: (losses[s], s))
    elif choice.isdigit():
        step = int(choice)
        if step not in kept:
            steps = ", ".join(str(s) for s in sorted(kept)) or "none"
            raise InputError(f"no checkpoint-{step} in this run (kept: {steps})", location=where,
                             hint="train.save_total_limit deletes older checkpoints; null keeps them all")
    else:
        raise InputError(f"--checkpoint {choice!r}: expected a step number, best or last", location=where)
    return str(kept[step].relative_to(run_dir))


def load_run(run_dir: Path, checkpoint: str | None = None) -> RunInfo:
    """run.json, with `adapter_dir` pointing at the chosen checkpoint's weights."""
    info = RunInfo.load(run_dir)
    chosen = checkpoint_path(run_dir, info, checkpoint)
    if chosen != info.adapter_dir:
        info.extra = {**info.extra, "checkpoint": chosen}
        info.adapter_dir = chosen
    return info


# ---------------------------------------------------------------- naming a run


def run_dirs(runs_root: Path) -> list[Path]:
    """Every run directory under `runs_root` (train.output_dir), newest first."""
    root = Path(runs_root)
    found = [path.parent for path in root.glob(f"*/{RUN_FILE}")] if root.is_dir() else []
    return sorted(found, key=lambda path: (_created_at(path), path.name), reverse=True)


def _created_at(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8")).get("created_at") or ""
    except (OSError, ValueError):
        return ""


def find_run(name: str | Path, runs_root: Path, *, field: str = "RUN") -> Path:
    """The run a user named: a run directory, `latest`, the id `stylewrap runs list` shows, or a
    unique prefix of one (every command that takes a run goes through here)."""
    path = Path(name)
    if (path / RUN_FILE).is_file():
        return path
    text = str(name)
    where = Location(None, field=field)
    runs = run_dirs(runs_root)
    if text == "latest":
        if not runs:
            raise InputError(f"no runs under {runs_root} yet", location=where, hint="train one: stylewrap train")
        return runs[0]
    exact = [run for run in runs if run.name == text]
    matches = exact or [run for run in runs if run.name.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(run.name for run in matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise InputError(f"{text!r} names {len(matches)} runs: {shown}", location=where, hint="type more of the id")
    if path.is_dir():
        raise InputError("not a stylewrap run directory (no run.json)", location=Location(path))
    raise InputError(f"no run {text!r} under {runs_root}", location=where,
                     hint="`stylewrap runs list` shows the ids; `latest` is the newest")
