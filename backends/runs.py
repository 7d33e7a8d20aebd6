"""`stylewrap runs list|show`: the run directories under train.output_dir."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from stylewrap.backends import slurm
from stylewrap.config import StylewrapConfig
from stylewrap.rundir import RunInfo, run_dirs
from stylewrap.rundir import find_run as find_run_dir


def runs_root(config: StylewrapConfig) -> Path:
    return config.resolve_path(config.train.output_dir) or Path(config.train.output_dir)


def list_runs(config: StylewrapConfig) -> list[tuple[Path, RunInfo]]:
    """Newest first."""
    return [(path, RunInfo.load(path)) for path in run_dirs(runs_root(config))]


def runs_table(runs: list[tuple[Path, RunInfo]]):
    """A table that fits 80 columns: the id whole (it is what other commands take, and it names the
    backend and method), the model's last path part, shortened with an ellipsis when narrow."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run", no_wrap=True, min_width=max((len(info.run_id) for _, info in runs), default=3))
    table.add_column("status", no_wrap=True, min_width=max((len(info.status) for _, info in runs), default=6))
    table.add_column("steps", justify="right", no_wrap=True, min_width=5)
    table.add_column("loss", justify="right", no_wrap=True, min_width=6)
    table.add_column("model", no_wrap=True, overflow="ellipsis", ratio=1)
    for _, info in runs:
        loss = info.metrics.get("final_loss")
        table.add_row(info.run_id, info.status, str(info.metrics.get("steps", "")),
                      f"{loss:.4f}" if isinstance(loss, (int, float)) else "", model_name(info.base_model))
    return table


def model_name(base_model: str) -> str:
    """A hub id as it is; a local folder by its last part (the folder path is in `runs show`)."""
    path = Path(base_model)
    return path.name if path.is_absolute() or base_model.startswith((".", "~")) else base_model


def run_record(run_dir: Path, *, refresh: bool = False) -> dict:
    """run.json with the folder it is in: what `runs list/show --json` print; `refresh`: a Slurm
    run's job state asked of the scheduler first (`slurm.refresh`)."""
    from dataclasses import asdict

    info = slurm.refresh(run_dir) if refresh else RunInfo.load(run_dir)
    return {"run_dir": str(Path(run_dir).resolve()), **asdict(info)}


def find_run(config: StylewrapConfig, name: str | Path, *, field: str = "RUN") -> Path:
    """A run by directory, id (as `runs list` shows it), unique id prefix or `latest`, under train.output_dir."""
    return find_run_dir(name, runs_root(config), field=field)


def show_run(run_dir: Path) -> str:
    """run.json for a person: what was trained on what, how it went, where everything is (a Slurm
    run's job state asked of the scheduler first)."""
    info = slurm.refresh(run_dir)
    run_dir = Path(run_dir).resolve()
    metrics, settings = info.metrics, info.hyperparameters
    loss = metrics.get("final_loss")
    outcome = [f"{metrics['steps']} steps" if metrics.get("steps") is not None else None,
               f"final loss {loss:.4f}" if isinstance(loss, (int, float)) else None,
               f"eval loss {metrics['eval_loss']:.4f}" if isinstance(metrics.get("eval_loss"), (int, float)) else None]
    dataset = info.dataset
    rows = [
        ("run", f"{info.run_id}  ({info.status})"),
        ("folder", str(run_dir)),
        ("backend", f"{info.backend} {info.backend_version or ''}".strip()),
        ("model", info.base_model),
        ("method", f"{info.method}" + (f", template {info.template}" if info.template else "")),
        ("dataset", ", ".join(str(x) for x in [dataset.get("name"), f"{dataset['rows']} rows" if dataset.get("rows") else None,
                                                dataset.get("source") or dataset.get("path")] if x)),
        ("mixed in", ", ".join(f"{m['source']} at ratio {m['ratio']} ({m['rows']} rows)" for m in dataset.get("mix", []))),
        ("when", " → ".join(x for x in [info.created_at, info.finished_at] if x)),
        ("slurm", slurm.slurm_line(info)),
        ("result", ", ".join(x for x in outcome if x)),
        ("settings", ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)),
        ("weights", info.adapter_dir or (f"written by node rank 0 (this folder is node rank {node}'s)"
                                         if (node := info.extra.get("launch", {}).get("node_rank")) else None)),
        ("merged", info.merged_dir),
        ("loss curve", info.loss_png),
        ("tracking", tracking_line(run_dir, info.extra.get("tracking") or {})),
        ("reports", ", ".join(info.compare_reports)),
        ("command", _short_command(info.command)),
    ]
    width = max(len(label) for label, _ in rows)
    shown = "\n".join(textwrap.fill(f"{label.ljust(width)}  {value}", 100, subsequent_indent=" " * (width + 2),
                                    break_on_hyphens=False, break_long_words=False)
                      for label, value in rows if value)
    return f"{shown}\n{next_commands(info)}"


def next_commands(info: RunInfo) -> str:
    """What to do with the run now: look at its answers once trained; follow or cancel a queued job."""
    if info.extra.get("launch", {}).get("node_rank"):
        return "next: the run's weights, loss and report are node rank 0's: `stylewrap runs list` there"
    if info.status in ("submitted", "running") and info.extra.get("slurm"):
        return f"next: stylewrap runs show {info.run_id}   (again, for the job's state)\n  or: stylewrap runs cancel {info.run_id}"
    return f"next: stylewrap compare {info.run_id}\n  or: stylewrap deploy --run {info.run_id}"


def tracking_line(run_dir: Path, tracking: dict) -> str | None:
    """Where the run's tracker wrote its logs, and the command that shows them."""
    from stylewrap.backends.flags import TRACKER_VIEWERS

    tracker, logs = tracking.get("report_to"), tracking.get("logs")
    if not logs or tracker not in TRACKER_VIEWERS:
        return None
    folder = run_dir / logs
    state = "" if folder.exists() else "  (not written yet)"
    return f"{tracker}: {folder}{state}; view: {TRACKER_VIEWERS[tracker].format(logs=folder)}"


def _short_command(command: str) -> str:
    """The training command with the PATH it set cut to its first entry (the backend env's bin)."""
    return re.sub(r"\bPATH=([^:\s]+):\S+", r"PATH=\1:…", command) + "  (whole: config/command.sh)"


def cancel_run(config_path: Path | None, overrides, name: str) -> RunInfo:
    """`stylewrap runs cancel`: the named run's Slurm job cancelled (`slurm.cancel`)."""
    from stylewrap.config import load_config

    return slurm.cancel(find_run(load_config(config_path, overrides), name))
