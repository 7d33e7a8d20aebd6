"""What `stylewrap train` costs on top of the backend's own command, side by side in one run.

For each backend: the same tiny run (tiny model, 200 real TslDial rows, a few steps), three arms
interleaved round by round, their order rotated each round (A B C, B C A, C A B, ...) so that a
drift in the machine's load falls on every arm alike:
  A. `stylewrap train --quiet` (config load, data conversion + registration, key check, render,
     the backend, progress tracking, loss PNG, run.json);
  B. `bash config/command.sh`, the exact command (environment included) A rendered and ran, in a
     copy of A's run directory without its outputs;
  C. the bare backend program on that config (`llamafactory-cli train config/train.yaml` /
     `swift sft config/train.yaml`), without the rendered environment.
Prints each wall time, the ratios A/C of minimums and medians (target <= 1.05) and, from inside each
A run (run.json metrics.backend_seconds), how A's wall time splits into the backend process and
stylewrap's own part. If A's backend process is no slower than B and C, whatever A/C shows beyond
stylewrap's own part is the backend's run-to-run variance.

    .venv/bin/python bench/train_overhead.py [--rounds 5] [--steps 10] [--backend llamafactory --backend swift]
"""

from __future__ import annotations

import argparse
import json
import os
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
    # every arm in a session of its own, as stylewrap starts the backend: with the kernel's scheduler
    # autogroups on, a session shares the CPUs with other sessions as one unit, so an arm left in
    # the bench's session would compete differently for the CPUs than A's backend does
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return elapsed


def newest_run(project: Path) -> Path:
    return max((project / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}, min {min(values):.2f}, max {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
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
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for name in backends:
        backend = get_backend(name)
        # warm-up: first-import caches (and stylewrap's known-keys cache) for both sides
        timed([*stylewrap, "--backend", name], work)
        source = newest_run(work)
        bare = [str(backend.require_installed()), *backend.subcommands["train"], "config/train.yaml"]
        walls: dict[str, list[float]] = {"A": [], "B": [], "C": []}
        backend_seconds: list[float] = []
        order = ["A", "B", "C"]
        for round_index in range(args.rounds):
            for arm in order[round_index % 3:] + order[: round_index % 3]:
                if arm == "A":
                    walls["A"].append(timed([*stylewrap, "--backend", name], work))
                    source = newest_run(work)
                    backend_seconds.append(json.loads((source / "run.json").read_text(encoding="utf-8"))["metrics"]["backend_seconds"])
                    continue
                copy = work / f"{arm}-{name}-{round_index}"
                shutil.copytree(source, copy, ignore=shutil.ignore_patterns("output", "*.log", "loss.png", "progress.jsonl"))
                walls[arm].append(timed(["bash", "config/command.sh"] if arm == "B" else bare, copy))
            print(f"  round {round_index + 1}: A {walls['A'][-1]:.2f} s (backend process {backend_seconds[-1]:.2f} s), "
                  f"B {walls['B'][-1]:.2f} s, C {walls['C'][-1]:.2f} s", flush=True)
        own = [wall - inside for wall, inside in zip(walls["A"], backend_seconds)]
        median = statistics.median
        print(f"{name} {backend.version()}, {args.rounds} interleaved rounds:")
        print(f"  A stylewrap train        {[round(t, 2) for t in walls['A']]} ({spread(walls['A'])})")
        print(f"    its backend process    {[round(t, 2) for t in backend_seconds]} ({spread(backend_seconds)})")
        print(f"    stylewrap's own part   {[round(t, 2) for t in own]} ({spread(own)}; "
              f"{median(own) / median(walls['A']):.1%} of A's median)")
        print(f"  B bash config/command.sh {[round(t, 2) for t in walls['B']]} ({spread(walls['B'])})")
        print(f"  C {' '.join([Path(bare[0]).name, *bare[1:]])} {[round(t, 2) for t in walls['C']]} ({spread(walls['C'])})")
        print(f"  ratio A/C of medians {median(walls['A']) / median(walls['C']):.3f}, of minimums {min(walls['A']) / min(walls['C']):.3f}; "
              f"A/B of medians {median(walls['A']) / median(walls['B']):.3f}")
        print(f"  ratio A's backend process / C of medians {median(backend_seconds) / median(walls['C']):.3f}, "
              f"B/C of medians {median(walls['B']) / median(walls['C']):.3f}; "
              f"C's own spread max/min {max(walls['C']) / min(walls['C']):.3f}")
        print(json.dumps({"backend": name, "A": walls["A"], "A_backend": backend_seconds, "B": walls["B"], "C": walls["C"]}))
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
