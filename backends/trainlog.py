"""What `stylewrap train` shows and keeps while and after the backend trains: a progress bar fed
from the backend's own step log, the loss curve (matplotlib, in the backend env's python: the core
install has no plotting library) and the closing summary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stylewrap.backends.base import StepProgress, TableBackend
from stylewrap.rundir import RunInfo
from stylewrap import runner

LOSS_CURVE_SCRIPT = Path(__file__).with_name("_loss_curve.py")
HEAD_BYTES = 256   # enough of a log's first line to tell a restarted file from the same one grown


class LogTail:
    """New complete lines of a file another process appends to, or starts again."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.head = b""

    def lines(self) -> list[str]:
        if not self.path.is_file():
            return []
        with open(self.path, "rb") as handle:
            if self.offset and (handle.read(len(self.head)) != self.head or os.fstat(handle.fileno()).st_size < self.offset):
                # the backend started the file again (LLaMA-Factory does when it resumes from a checkpoint);
                # told by its first bytes, since a removed file's inode is often reused at once
                self.offset, self.partial, self.head = 0, b"", b""
            handle.seek(self.offset)
            chunk = handle.read()
        if not self.head:
            self.head = chunk[:HEAD_BYTES]
        self.offset += len(chunk)
        *complete, self.partial = (self.partial + chunk).split(b"\n")
        return [text for line in complete if (text := line.decode("utf-8", errors="replace")).strip()]


class ProgressFeed:
    """Reads the backend's own step log and feeds a rich progress bar (or nothing, when quiet)."""

    def __init__(self, backend: TableBackend, log_path: Path, bar=None):
        self.backend = backend
        self.tail = LogTail(log_path)
        self.bar = bar
        self.task = bar.add_task(f"{backend.name} training", total=None, loss="-", lr="-", eta="-") if bar else None
        self.records: list[StepProgress] = []
        self.finals: dict[str, Any] = {}
        self.backend_seconds: float | None = None

    def poll(self, _line: str = "") -> None:
        for line in self.tail.lines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            self.finals.update({k: v for k, v in record.items() if k.startswith(("train_", "eval_loss"))})
            progress = self.backend.read_progress(record)
            if progress is None:
                continue
            if self.records and went_back(self.records[-1], progress):
                # the backend resumed from a checkpoint: the steps after it are trained again, and the
                # loss curve must show them once, not the lost ones and then their repeats
                self.records = [kept for kept in self.records if kept.step < progress.step]
            self.records.append(progress)
            if self.bar is not None and progress.loss is not None:
                self.bar.update(self.task, completed=progress.step, total=progress.total,
                                loss=f"{progress.loss:.4f}" if progress.loss is not None else "-",
                                lr=f"{progress.lr:.2e}" if progress.lr is not None else "-", eta=progress.eta or "-")


def went_back(last: StepProgress, new: StepProgress) -> bool:
    """True when `new` repeats or precedes `last`'s training step (an evaluation shares its step)."""
    return new.step < last.step or (new.step == last.step and new.loss is not None and last.loss is not None)


def progress_bar(console=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn

    return Bar(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
               TextColumn("ETA {task.fields[eta]}"), console=console, transient=False)


def draw_loss_curve(backend: TableBackend, progress_file: Path, png_file: Path, title: str) -> str | None:
    """Draw progress_file's losses into png_file with the backend env's matplotlib; None when drawn,
    else why not (the run itself succeeded either way). About 1.5 s on 2 busy CPU cores for a
    3,000-step run (docs/benchmarks.md)."""
    python = backend.python()
    if python is None:
        return f"no python in the {backend.name} environment to draw it with"
    result = runner.run(runner.script_invocation(python, LOSS_CURVE_SCRIPT, str(progress_file), str(png_file), title,
                                   env={"MPLBACKEND": "Agg"}), tail_lines=5)
    return None if result.ok else f"drawing failed: {' | '.join(line for line in result.tail if line.strip())[-300:]}"


def summary(info: RunInfo, run_dir: Path) -> str:
    m = info.metrics
    lines = [f"run: {run_dir}", f"status: {info.status}", f"backend: {info.backend} {info.backend_version or ''}".rstrip(),
             f"steps: {m.get('steps')}  loss: {m.get('first_loss')} -> {m.get('final_loss')}"]
    if m.get("final_rewards_margins") is not None:
        # preference runs: how far the chosen answers' reward pulled ahead of the rejected ones'
        lines.append(f"reward margin: {m.get('first_rewards_margins'):.4f} -> {m['final_rewards_margins']:.4f}"
                     f"  accuracy: {m.get('final_rewards_accuracies', float('nan')):.2f}")
    if info.adapter_dir:
        lines.append(f"weights: {run_dir / info.adapter_dir}")
    elif (node := info.extra.get("launch", {}).get("node_rank")):
        lines.append(f"weights: written by node rank 0 (this is node rank {node}: its log, config and data only)")
    if info.loss_png:
        lines.append(f"loss curve: {run_dir / info.loss_png}")
    return "\n".join(lines)
