"""GPU training benchmark through `stylewrap train`: the seeds' settings against stylewrap's defaults.

Each run is a real `stylewrap train` of the 7B-shaped model (bench/gpu/model7b.py) on the real
TslDial data, stopped after warmup + measured optimizer steps. The `default` runs set nothing but the
model and data: stylewrap plans batch, packing, checkpointing, dtype, attention and Liger for the GPU
it finds (backends/autotune.py). bench/gpu/gpubench_probe.py, loaded
into the backend's Python, counts the tokens the trainer was actually fed (non-pad; supervised
label tokens separately) and times the measured steps with the GPU synchronized. This script turns
the per-rank records into one JSON with tokens/GPU/s, peak memory, MFU and the side-by-side ratios.

MFU = model FLOPs / time / (GPUs x 989.4 TFLOP/s, H200 SXM dense bf16 datasheet), with model FLOPs
per step = 4 N_frozen T + 6 N_lora T + 6 L d sum(s_i^2): the frozen base does forward and
input-gradient matmuls (2N + 2N per token) but no weight gradients, LoRA does all three, and causal
attention costs 2 L d s^2 forward and twice that backward per sequence of length s. Recomputation
by gradient checkpointing is not counted (it is hardware work, not model work).

    python bench/gpu/bench.py 1gpu --model /tmp/Qwen2.5-7B-Instruct --data TslDial.json --out results/
    python bench/gpu/bench.py 2gpu ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

H200_BF16_DENSE_FLOPS = 989.4e12
SHORT_RUN = ["--set", "train.save_steps=100000", "--set", "train.eval_steps=100000", "--set", "train.logging_steps=1"]


def run_matrix(mode: str) -> list[dict]:
    runs = []
    for backend, short in (("llamafactory", "lf"), ("swift", "sw")):
        if mode == "1gpu":
            runs += [
                # the seed ran ZeRO-2 on 2 GPUs; DeepSpeed has nothing to shard on one
                {"name": f"{short}-seed-translational", "backend": backend, "preset": "seed-translational",
                 "args": ["--nproc-per-node", "1", "--set", "train.deepspeed=null"], "warmup": 2, "measured": 6},
                {"name": f"{short}-seed-classical", "backend": backend, "preset": "seed-classical",
                 "args": [], "warmup": 1, "measured": 3},
                {"name": f"{short}-default", "backend": backend, "preset": None,
                 "args": [], "warmup": 4, "measured": 10},
                # the memory plan at another point: planned as if the GPU had 40 GiB free, its peak must stay under
                {"name": f"{short}-default-planned-40gib", "backend": backend, "preset": None,
                 "args": ["--set", "train.gpu_memory_gib=40"], "warmup": 2, "measured": 4},
                # the defaults with plain SDPA and no packing, against which the varlen packing is judged
                {"name": f"{short}-default-sdpa", "backend": backend, "preset": None,
                 "args": ["--set", "train.attention=sdpa", "--set", "train.packing=false"], "warmup": 4, "measured": 10},
                # 4-bit QLoRA (bitsandbytes carried as a wheel)
                {"name": f"{short}-qlora", "backend": backend, "preset": None,
                 "args": ["--set", "train.method=qlora"], "warmup": 3, "measured": 6},
            ]
        elif mode == "2gpu":
            runs += [
                {"name": f"{short}-seed-translational-2gpu", "backend": backend, "preset": "seed-translational",
                 "args": ["--nproc-per-node", "2"], "warmup": 2, "measured": 4},
                {"name": f"{short}-default-2gpu", "backend": backend, "preset": None,
                 "args": ["--nproc-per-node", "2"], "warmup": 3, "measured": 8},
            ]
    if mode == "2gpu":
        runs.append({"name": "lf-default-2gpu-zero3", "backend": "llamafactory", "preset": None,
                     "args": ["--nproc-per-node", "2", "--deepspeed", "zero3"], "warmup": 3, "measured": 5})
    return runs


def model_numbers(model_dir: Path) -> dict:
    config = json.loads((model_dir / "config.json").read_text())
    d, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    kv = d // config["num_attention_heads"] * config["num_key_value_heads"]
    shapes = {"q_proj": (d, d), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (d, d),
              "gate_proj": (d, inter), "up_proj": (d, inter), "down_proj": (inter, d)}
    return {"layers": layers, "hidden": d, "shapes": shapes,
            "matmul_params": layers * sum(a * b for a, b in shapes.values()) + d * config["vocab_size"]}


def lora_params(numbers: dict, target: str, rank: int) -> int:
    names = numbers["shapes"] if target == "all" else target.split(",")
    return numbers["layers"] * sum(rank * sum(numbers["shapes"][n]) for n in names)


def summarize(run: dict, records: list[dict], rendered: dict, numbers: dict) -> dict:
    seconds = max(r["seconds"] for r in records)
    gpus = records[0]["world_size"]
    tokens = sum(r["tokens"] for r in records)
    target = rendered.get("lora_target") or ",".join(rendered.get("target_modules") or [])
    target = "all" if target in ("all", "all-linear") else target
    n_lora = lora_params(numbers, target, rendered.get("lora_rank", 8))
    flops = (4 * numbers["matmul_params"] * tokens + 6 * n_lora * tokens
             + 6 * numbers["layers"] * numbers["hidden"] * sum(r["sum_sq_seq_len"] for r in records))
    return {
        "name": run["name"], "backend": run["backend"], "preset": run["preset"], "gpus": gpus,
        "tokens_per_gpu_per_s": tokens / seconds / gpus,
        "label_tokens_per_gpu_per_s": sum(r["label_tokens"] for r in records) / seconds / gpus,
        "mfu": flops / seconds / (gpus * H200_BF16_DENSE_FLOPS),
        "peak_memory_allocated_gib": max(r["peak_memory_allocated_gib"] for r in records),
        "peak_memory_reserved_gib": max(r["peak_memory_reserved_gib"] for r in records),
        "measured_steps": records[0]["measured_steps"], "seconds": seconds, "tokens": tokens,
        "sequences": sum(r["sequences"] for r in records), "lora_params": n_lora,
        "used": {k: records[0].get(k) for k in (
            "per_device_train_batch_size", "gradient_accumulation_steps", "gradient_checkpointing", "liger",
            "liger_modules", "bf16", "parameter_dtypes", "attn_implementation", "deepspeed", "last_input_shape")},
        "rendered": {k: rendered.get(k) for k in (
            "per_device_train_batch_size", "gradient_accumulation_steps", "packing", "neat_packing",
            "group_by_length", "flash_attn", "attn_impl", "enable_liger_kernel", "use_liger_kernel",
            "disable_gradient_checkpointing", "gradient_checkpointing", "bf16", "fp16", "torch_dtype",
            "lora_target", "target_modules", "deepspeed", "dataloader_num_workers", "learning_rate", "system",
            "default_system", "quant_method", "quantization_bit", "quant_bits") if k in rendered},
        "probe": records,
    }


def run_one(run: dict, args, numbers: dict) -> dict:
    probe_dir = Path(f"/tmp/gpubench-probe/{run['name']}")
    shutil.rmtree(probe_dir, ignore_errors=True)   # a repeat must never report an earlier one's records
    env = {**os.environ, "GPUBENCH_OUT": str(probe_dir), "GPUBENCH_WARMUP_STEPS": str(run["warmup"])}
    preset = ["--preset", run["preset"]] if run["preset"] else []
    argv = ["stylewrap", "train", "--quiet", "--backend", run["backend"], *preset,
            "--set", f"train.model={args.model}", "--set", "data.dataset_name=tsldial",
            "--set", f"data.train_file={args.data}",
            "--set", f"train.max_steps={run['warmup'] + run['measured']}", *SHORT_RUN, *run["args"]]
    log = args.logs / f"{run['name']}-{len(list(args.logs.glob(run['name'] + '-*.log')))}.log"
    started = time.time()
    with open(log, "w") as handle:
        handle.write(" ".join(argv) + "\n")
        handle.flush()
        code = subprocess.run(argv, cwd=args.work, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
    records = [json.loads(p.read_text()) for p in sorted(probe_dir.glob("probe-rank*.json"))]
    run_dirs = sorted((args.work / "runs").glob(f"*-{run['backend']}-*"), key=lambda p: p.stat().st_mtime)
    rendered = yaml.safe_load((run_dirs[-1] / "config" / "train.yaml").read_text()) if run_dirs else {}
    result = {"name": run["name"], "exit_code": code, "wall_s": time.time() - started,
              "run_dir": str(run_dirs[-1]) if run_dirs else None}
    if code == 0 and records and all(r["measured_steps"] == run["measured"] for r in records):
        result.update(summarize(run, records, rendered, numbers))
    else:
        result["error"] = f"exit code {code}, or the run did not finish its measured steps (see its log)"
    print(json.dumps({k: result.get(k) for k in ("name", "exit_code", "tokens_per_gpu_per_s",
                                                  "label_tokens_per_gpu_per_s", "mfu", "peak_memory_allocated_gib",
                                                  "used", "error")}), flush=True)
    return result


def versions() -> dict:
    out = {}
    for env in ("llamafactory", "swift"):
        python = Path(os.environ.get("STYLEWRAP_ENVS_DIR", "/tmp/envs")) / env / "bin" / "python"
        code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
                "['torch','transformers','peft','accelerate','datasets','trl','deepspeed','liger-kernel',"
                f"'{'llamafactory' if env == 'llamafactory' else 'ms-swift'}']}}))")
        out[env] = json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip().splitlines()
    return {"gpus": smi, "backends": out, "python": sys.version.split()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["1gpu", "2gpu"])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="TslDial.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", help="run names to run (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="times each run is repeated (median and spread)")
    args = parser.parse_args()
    args.work = Path(f"/tmp/gpubench-work-{args.mode}")
    args.logs = Path(f"/tmp/gpubench-logs-{args.mode}")
    for folder in (args.work, args.logs, args.out):
        folder.mkdir(parents=True, exist_ok=True)
    (args.work / "stylewrap.yaml").write_text(yaml.safe_dump({"train": {"template": "qwen"}}))
    numbers = model_numbers(args.model)
    report = {"mode": args.mode, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "versions": versions(), "model": {"dir": str(args.model), "matmul_params": numbers["matmul_params"]},
              "mfu_peak_flops_per_gpu": H200_BF16_DENSE_FLOPS, "runs": []}
    out_file = args.out / f"results-{args.mode}.json"
    for repeat in range(args.repeat):
        for run in run_matrix(args.mode):
            if args.only and run["name"] not in args.only:
                continue
            report["runs"].append({**run_one(run, args, numbers), "repeat": repeat})
            out_file.write_text(json.dumps(report, indent=2))
    report["summary"] = summarize_repeats(report["runs"])
    report["ratios"] = ratios(report["summary"], args.mode)
    out_file.write_text(json.dumps(report, indent=2))
    print_table(report)
    failed = [r["name"] for r in report["runs"] if "tokens_per_gpu_per_s" not in r]
    if failed:
        print(f"\n{len(failed)} of {len(report['runs'])} runs failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


def summarize_repeats(runs: list[dict]) -> dict[str, dict]:
    """Median and spread (min-max) of each run's repeats, over the repeats that finished."""
    summary = {}
    for name in dict.fromkeys(r["name"] for r in runs):
        done = [r for r in runs if r["name"] == name and "tokens_per_gpu_per_s" in r]
        entry = {"repeats": sum(r["name"] == name for r in runs), "finished": len(done)}
        for key in ("tokens_per_gpu_per_s", "label_tokens_per_gpu_per_s", "mfu", "peak_memory_allocated_gib"):
            values = sorted(r[key] for r in done)
            if values:
                entry[key] = {"median": statistics.median(values), "min": values[0], "max": values[-1]}
        summary[name] = entry
    return summary


def ratios(summary: dict[str, dict], mode: str) -> dict[str, dict]:
    """Side-by-side ratios of medians, trained and supervised (label) tokens."""
    suffix = "-2gpu" if mode == "2gpu" else ""
    pairs = [(f"{short}-default{suffix}", f"{short}-seed-translational{suffix}") for short in ("lf", "sw")]
    pairs += [(f"{short}-default", f"{short}-default-sdpa") for short in ("lf", "sw")]
    pairs += [("sw-default", "lf-default")]
    out = {}
    for fast, slow in pairs:
        a, b = summary.get(fast, {}), summary.get(slow, {})
        if "tokens_per_gpu_per_s" in a and "tokens_per_gpu_per_s" in b:
            out[f"{fast} / {slow}"] = {
                key: a[key]["median"] / b[key]["median"]
                for key in ("tokens_per_gpu_per_s", "label_tokens_per_gpu_per_s")}
    return out


def print_table(report: dict) -> None:
    print(f"\n{'run':30} {'n':>3} {'tok/GPU/s median (min-max)':>28} {'label tok/s':>11} {'MFU':>6} {'peak GiB':>9}")
    for name, entry in report["summary"].items():
        if "tokens_per_gpu_per_s" not in entry:
            print(f"{name:30} {entry['finished']}/{entry['repeats']} FAILED")
            continue
        tok = entry["tokens_per_gpu_per_s"]
        print(f"{name:30} {entry['finished']:>3} {tok['median']:10.0f} ({tok['min']:.0f}-{tok['max']:.0f})".ljust(64)
              + f"{entry['label_tokens_per_gpu_per_s']['median']:11.0f} {entry['mfu']['median']:6.1%} "
              f"{entry['peak_memory_allocated_gib']['max']:9.1f}")
    for name, value in report["ratios"].items():
        print(f"ratio {name}: {value['tokens_per_gpu_per_s']:.2f}x trained tokens, "
              f"{value['label_tokens_per_gpu_per_s']:.2f}x supervised tokens")

if __name__ == "__main__":
    main()
