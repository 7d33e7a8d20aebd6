"""CLI startup: `stylewrap --help` against the backends' own CLIs, side by side in one run.

    python bench/cli_startup.py [--runs 7] [--backend-runs 3]

Medians of wall time per command (each run a fresh process); the backends come from their
stylewrap-managed environments (`stylewrap backend install`). Target: stylewrap <= 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from stylewrap import __version__
from stylewrap.backends.envs import backend_executable, env_dir, read_record
from stylewrap.backends.registry import backend_class, backend_names


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend-runs", type=int, default=3)
    args = parser.parse_args()
    stylewrap = shutil.which("stylewrap", path=str(Path(sys.executable).parent)) or "stylewrap"
    rows = [(f"stylewrap --help ({__version__})", median_seconds([stylewrap, "--help"], args.runs))]
    for name in backend_names():
        backend = backend_class(name)
        executable = backend_executable(name)
        if executable is None:
            print(f"{name}: not installed (stylewrap backend install {name}); skipped")
            continue
        version = (read_record(env_dir(name)) or {}).get("versions", {}).get(backend.distribution, "?")
        command = " ".join((backend.program, *backend.env.cli_check))
        rows.append((f"{command} ({backend.distribution} {version})",
                     median_seconds([str(executable), *backend.env.cli_check], args.backend_runs)))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} cores, load average {load}")
    baseline = rows[0][1]
    for label, seconds in rows:
        print(f"{label:<45} {seconds:7.3f} s  {seconds / baseline:6.1f}x stylewrap")


if __name__ == "__main__":
    main()
