"""What `stylewrap train` costs on top of the backend's own command, side by side in one run.

For each backend: the same tiny run (tiny model, 200 real TslDial rows, a few steps), alternately
  A. `stylewrap train --quiet` (config load, data conversion + registration, key check, render,
     the backend, progress tracking, loss PNG, run.json), and
  B. the backend's own program on the config A rendered (`llamafactory-cli train config/train.yaml`
     / `swift sft config/train.yaml`) in a copy of A's run directory without its outputs.
Prints each wall time and the ratios A/B of minimums and of medians (target <= 1.05). On a shared,
loaded machine the run-to-run noise can exceed the overhead, so it also prints the overhead measured
inside each A run: A's wall time over the backend process's own wall time (run.json
metrics.backend_seconds), which other load disturbs far less.

    .venv/bin/python bench/train_overhead.py [--rounds 3] [--steps 10] [--backend llamafactory --backend swift]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TSLDIAL = REPO.parent / "shared" / "data" / "tsldial" / "TslDial.json"


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return elapsed


def newest_run(project: Path) -> Path:
    return max((project / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backend", action="append", choices=["llamafactory", "swift"])
    args = parser.parse_args()
    backends = args.backend or ["llamafactory", "swift"]

    from stylewrap.backends.base import get_backend
    from stylewrap.tinymodel import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="stylewrap-bench-"))
    model = build_tiny_model(work / "tiny-model")
    rows = json.loads(TSLDIAL.read_text(encoding="utf-8"))[:200]
    (work / "rows.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    config = {"data": {"train_file": str(work / "rows.json")},
              "train": {"model": str(model), "max_steps": args.steps, "cutoff_len": 192, "per_device_train_batch_size": 2,
                        "gradient_accumulation_steps": 1, "logging_steps": 1, "save_steps": 1000,
                        "dataloader_num_workers": 0}}
    (work / "stylewrap.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    stylewrap = [sys.executable, "-m", "stylewrap", "train", "--quiet"]
    print(f"{args.rounds} rounds x {args.steps} steps, tiny Qwen2, 200 TslDial rows, work dir {work}")
    for name in backends:
        backend = get_backend(name)
        # warm-up: first-import caches (and stylewrap's known-keys cache) for both sides
        timed([*stylewrap, "--backend", name], work)
        wrapped, direct, inside = [], [], []
        for _ in range(args.rounds):
            wrapped.append(timed([*stylewrap, "--backend", name], work))
            source = newest_run(work)
            backend_seconds = json.loads((source / "run.json").read_text(encoding="utf-8"))["metrics"]["backend_seconds"]
            inside.append(wrapped[-1] / backend_seconds)
            copy = work / f"direct-{name}-{len(direct)}"
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("output", "*.log", "loss.png", "progress.jsonl"))
            argv = [str(backend.require_installed()), *backend.subcommands["train"], "config/train.yaml"]
            direct.append(timed(argv, copy))
        # min is the least disturbed run of each side (other load only ever adds time)
        print(f"{name} {backend.version()}: stylewrap train {[round(t, 2) for t in wrapped]} s, "
              f"{argv[0].rsplit('/', 1)[-1]} {' '.join(argv[1:])} {[round(t, 2) for t in direct]} s, "
              f"ratio of minimums {min(wrapped) / min(direct):.3f}, "
              f"ratio of medians {statistics.median(wrapped) / statistics.median(direct):.3f}; "
              f"inside each stylewrap run, wall / backend process {[round(r, 3) for r in inside]}, "
              f"median {statistics.median(inside):.3f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
