"""`stylewrap runs list|show`: the run directories under train.output_dir."""

from __future__ import annotations

from pathlib import Path

from stylewrap.config import StylewrapConfig
from stylewrap.rundir import RUN_FILE, RunInfo


def runs_root(config: StylewrapConfig) -> Path:
    return config.resolve_path(config.train.output_dir) or Path(config.train.output_dir)


def list_runs(config: StylewrapConfig) -> list[tuple[Path, RunInfo]]:
    """Newest first."""
    root = runs_root(config)
    found = [(path.parent, RunInfo.load(path.parent)) for path in root.glob(f"*/{RUN_FILE}")] if root.is_dir() else []
    return sorted(found, key=lambda item: item[1].created_at or "", reverse=True)


def runs_table(runs: list[tuple[Path, RunInfo]]):
    from rich.table import Table

    table = Table("run", "backend", "method", "status", "steps", "final loss", "model")
    for _, info in runs:
        loss = info.metrics.get("final_loss")
        table.add_row(info.run_id, info.backend, info.method, info.status, str(info.metrics.get("steps", "")),
                      f"{loss:.4f}" if isinstance(loss, (int, float)) else "", info.base_model)
    return table


def find_run(config: StylewrapConfig, name: str) -> Path:
    """A run by directory path or by id under train.output_dir."""
    path = Path(name)
    return path if (path / RUN_FILE).is_file() else runs_root(config) / name


def show_run(run_dir: Path) -> str:
    import json
    from dataclasses import asdict

    return json.dumps({"run_dir": str(run_dir), **asdict(RunInfo.load(run_dir))}, ensure_ascii=False, indent=2)
