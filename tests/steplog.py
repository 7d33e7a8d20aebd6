"""What a trained run's own step log says about its optimizer steps."""

from __future__ import annotations

import json
from pathlib import Path


def rows_per_step(run_dir: Path, rows: int) -> list[float]:
    """Rows each optimizer step took, one value a logged step: the trainer logs after each step the
    epoch it has reached, the share of the `rows` training rows trained so far (both backends train
    through transformers' Trainer and log its `epoch`). The log is the one run.json names."""
    backend_log = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))["extra"]["backend_log"]
    records = [json.loads(line) for line in (Path(run_dir) / backend_log).read_text(encoding="utf-8").splitlines() if line.strip()]
    steps = [record for record in records if "loss" in record and "epoch" in record]
    return [record["epoch"] * rows / step for step, record in enumerate(steps, 1)]
