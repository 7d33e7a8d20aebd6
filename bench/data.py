"""Benchmark: stylewrap's streaming validate/convert vs HF `datasets.load_dataset("json")`, side by side.

    python bench/data.py [--rows 1000000] [--repeat 3] [--workdir DIR]

Builds a sharegpt JSONL file of --rows rows from the real TslDial and glaive rows in ../shared/data
(single- and multi-turn, some with a system prompt and tools), then times, each in a fresh process
so its peak RSS is its own:
  * `validate`  every row checked (JSON, duplicate keys, roles, alternation, content)
  * `convert`   sharegpt -> OpenAI messages JSONL (parse, check, rewrite, atomic write)
  * HF datasets `load_dataset("json")` of the same file into a fresh cache, in a backend env's
    python (the core has no `datasets`); this is what both LLaMA-Factory and ms-swift run first.
  * `parse only`  orjson.loads of every line, one slice per CPU, nothing checked or built: the
    ceiling of any pass that turns each row into Python objects (validate and convert do more)
  * for context, on the tenth-size file: that load plus LLaMA-Factory's own converter
    (parser + align_dataset, tests/integration/backend_loaders/llamafactory_load.py), i.e. what
    LLaMA-Factory does to a sharegpt file before it tokenizes.
validate, convert and parse only run --repeat times in turn on the big file; the table and the ratio
lines use each one's fastest run (every round's ratios are printed too: one run of a 2-second job
on a shared machine says more about the neighbours than about the code).
Memory flatness: the stylewrap passes also run on a tenth of the file; peak RSS should not grow.
The load average before and after is printed: the numbers mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import cycle, islice
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

STYLEWRAP_JOBS = {
    "validate": "from stylewrap.adapters.validate import validate; r = validate(sys.argv[1]); assert r.ok, r.summary(); print(r.rows)",
    "convert": "from stylewrap.adapters.ops import convert; print(convert(sys.argv[1], sys.argv[2], 'messages'))",
}
# issue 22: validate and convert against the parse-only ceiling measured in the same run
TARGETS_OF_PARSE = {"validate": 0.80, "convert": 0.60}
HF_JOB = (
    "from datasets import load_dataset, disable_progress_bars; disable_progress_bars();"
    "ds = load_dataset('json', data_files=sys.argv[1], split='train', cache_dir=sys.argv[2]); print(len(ds))"
)
# ru_maxrss of the children, read by a wrapper so each job reports its own peak
WRAPPER = "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)"


def build_input(path: Path, rows: int) -> None:
    sys.path.insert(0, str(REPO))
    from stylewrap.adapters import Record, read_records, write_records

    tsl = list(read_records(SHARED / "tsldial/TslDial.json"))
    glaive = list(read_records(SHARED / "llamafactory/glaive_toolcall_zh_demo.json"))
    system = {"role": "system", "content": "你是一个说话带西式翻译腔的朋友。"}

    def shapes():
        for index, record in enumerate(cycle(tsl)):
            kind = index % 10
            if kind < 6:
                yield record
            elif kind < 8:
                yield Record([system, *record.messages])
            elif kind == 8:
                partner = tsl[(index * 7919) % len(tsl)]
                yield Record([*record.messages, *partner.messages])
            else:
                yield glaive[index % len(glaive)]

    write_records(islice(shapes(), rows), path, "sharegpt")


def parse_only(path: str) -> int:
    """Rows of the JSONL file `path`, each parsed by orjson and dropped, in one process per CPU."""
    from stylewrap.adapters.jsonstream import byte_ranges

    ranges = byte_ranges(path, os.cpu_count() or 1)
    with ProcessPoolExecutor(len(ranges)) as pool:
        return sum(pool.map(_parse_slice, [path] * len(ranges), ranges))


def _parse_slice(path: str, byte_range: tuple[int, int]) -> int:
    import orjson

    start, end = byte_range
    rows = 0
    with open(path, "rb") as handle:
        handle.seek(start)
        for line in handle:
            orjson.loads(line)
            rows += 1
            start += len(line)
            if start >= end:
                break
    return rows


def timed(argv: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one job in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"job failed: {argv[:3]}\n{proc.stderr[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    return elapsed, int(lines[-1]) // 1024, lines[-2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stylewrap-bench-data"))
    parser.add_argument("--hf-python", default=None, help="python with `datasets` (default: the llamafactory env)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of validate, convert and parse only on the big file; each keeps its fastest")
    parser.add_argument("--parse-only", metavar="JSONL", help=argparse.SUPPRESS)  # the `parse only` job itself
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.parse_only:
        print(parse_only(args.parse_only))
        return
    from stylewrap.backends.envs import env_python

    hf_python = args.hf_python or env_python("llamafactory") or env_python("swift")
    if hf_python is None:
        raise SystemExit("no backend env with `datasets`: set STYLEWRAP_ENVS_DIR or pass --hf-python")
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    big, small = args.workdir / "big.jsonl", args.workdir / "small.jsonl"
    build_input(big, args.rows)
    build_input(small, args.rows // 10)
    size_mb = big.stat().st_size / 2**20

    load_before = os.getloadavg()
    results = {}
    # the jobs the targets compare run --repeat times in turn (one round after another); each keeps
    # its fastest run, since on a shared machine a slow run measures the neighbours
    compared = {name: [sys.executable, "-c", f"import sys; {code}", str(big), str(args.workdir / f"{name}_big.jsonl")]
                for name, code in STYLEWRAP_JOBS.items()}
    compared["parse_only"] = [sys.executable, str(Path(__file__).resolve()), "--parse-only", str(big)]
    rounds = []
    for _ in range(args.repeat):
        rounds.append({name: timed(argv) for name, argv in compared.items()})
    for name in compared:
        seconds, peak, out = min(one_round[name] for one_round in rounds)
        results[(name, "big")] = (seconds, peak, int(out))
    for name, code in STYLEWRAP_JOBS.items():
        seconds, peak, out = timed([sys.executable, "-c", f"import sys; {code}", str(small), str(args.workdir / f"{name}_small.jsonl")])
        results[(name, "small")] = (seconds, peak, int(out))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    seconds, peak, out = timed([str(hf_python), "-c", f"import sys; {HF_JOB}", str(big), str(args.workdir / "hf_cache")])
    results[("hf_load", "big")] = (seconds, peak, int(out))
    lf_python = env_python("llamafactory")
    if lf_python is not None:
        from stylewrap.backends.llamafactory.registration import register as register_llamafactory

        lf_dir = args.workdir / "lf"
        register_llamafactory(lf_dir, "bench", small, "sharegpt")
        loader = REPO / "tests/integration/backend_loaders/llamafactory_load.py"
        env_cache = {"HF_DATASETS_CACHE": str(args.workdir / "lf_cache")}
        os.environ.update(env_cache)
        seconds, peak, out = timed([str(lf_python), str(loader), "--count", str(lf_dir), "bench"])
        results[("hf_load+lf_align", "small")] = (seconds, peak, json.loads(out)["bench"])

    hf_rate = args.rows / results[("hf_load", "big")][0]
    import msgspec
    import orjson

    hf_versions = subprocess.run([str(hf_python), "-c", "import datasets, pyarrow; print(datasets.__version__, pyarrow.__version__)"], capture_output=True, text=True).stdout.split()
    print(f"input: {args.rows} sharegpt rows, {size_mb:.0f} MiB JSONL; {os.cpu_count()} CPUs, Python {platform.python_version()}, orjson {orjson.__version__}, msgspec {msgspec.__version__}; HF: datasets {' / pyarrow '.join(hf_versions)}")
    print("load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(*load_before, *os.getloadavg()))
    print(f"{'job':<22}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'peak MiB':>10}{'vs HF':>8}")
    for (name, label), (seconds, peak, rows) in results.items():
        rate = rows / seconds
        print(f"{name + ' (' + label + ')':<22}{rows:>10}{seconds:>10.1f}{rate:>12,.0f}{peak:>10}{rate / hf_rate:>7.2f}x")
    for number, one_round in enumerate(rounds, 1):
        print(f"round {number}: " + ", ".join(f"{name} {args.rows / one_round[name][0]:,.0f} rows/s" for name in compared) + "; "
              + ", ".join(f"{name} / parse only {one_round['parse_only'][0] / one_round[name][0]:.1%}" for name in STYLEWRAP_JOBS))
    parse_rate = args.rows / results[("parse_only", "big")][0]
    for name, target in TARGETS_OF_PARSE.items():
        rate = results[(name, "big")][2] / results[(name, "big")][0]
        print(f"ratio: {name} / parse only = {rate:,.0f} / {parse_rate:,.0f} rows/s = {rate / parse_rate:.1%} "
              f"(target >= {target:.0%}: {'met' if rate / parse_rate >= target else 'NOT met'})")
    flat = {name: results[(name, "big")][1] / max(results[(name, "small")][1], 1) for name in STYLEWRAP_JOBS}
    print("peak memory, full file / tenth of it: " + ", ".join(f"{k} {v:.2f}x" for k, v in flat.items()))
    print(json.dumps({f"{k[0]}_{k[1]}": {"seconds": round(v[0], 2), "peak_mib": v[1], "rows": v[2]} for k, v in results.items()}))


if __name__ == "__main__":
    main()
