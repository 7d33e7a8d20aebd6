"""The table at the end of `stylewrap run`: stage, ran/skipped, time, key figure; also written as
summary.json and summary.md into the training run's folder (the folder `runs show` describes)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from stylewrap.fsutil import atomic_write_json, atomic_write_text
from stylewrap.pipeline.lock import now

COLUMNS = ("stage", "result", "time", "key figure")


def rows(result) -> list[tuple[str, str, str, str]]:
    out = []
    for stage in result.stages:
        seconds = f"{stage.seconds:.1f} s" if stage.seconds is not None else ""
        note = stage.figure or stage.reason or ""
        out.append((stage.name, stage.action, seconds, note))
    return out


def markdown(result) -> str:
    lines = [f"# stylewrap run: {result.config_path}", "", f"finished {now()}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows(result):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def write_summary(result, folder: Path | None) -> list[Path]:
    """summary.json and summary.md in `folder` (the run directory); none before a run exists."""
    if folder is None or not folder.is_dir():
        return []
    data = {"config": str(result.config_path), "lock": str(result.lock_path), "finished_at": now(),
            "stages": [asdict(stage) for stage in result.stages]}
    return [atomic_write_json(folder / "summary.json", data), atomic_write_text(folder / "summary.md", markdown(result))]
