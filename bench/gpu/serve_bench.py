"""Serve a model with `stylewrap deploy` on the GPU and time chat: one lone request, then 16 streams at once.

Per stream: time to first token and total latency; overall: completion tokens per second. Each arm
is one server configuration (the backend and what `deploy` passes it), started once and measured
`--repeat` times; the ratio lines compare the arms measured in the same run.

    python bench/gpu/serve_bench.py --model DIR --data TslDial.json --out results/ [--arms A,B] [--repeat 3]
    python bench/gpu/serve_bench.py --run RUN_DIR ...     # export (merge) a trained run first, serve that

A merged run is a full model like any other: serving the benchmark's 7B folder itself measures the
same thing without a training run on the GPU first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp

from stylewrap.serve import servers

PORT = 8011
MAX_TOKENS = 128

# arm -> (backend, `--set` options, environment, streams: None for --streams, 0 for the lone requests
# only). The "default" arms set nothing: what `stylewrap deploy` does on its own. "before": the
# settings of round 1 (ms-swift batching 16 but only what was queued, cuDNN attention left on).
ARMS = {
    "swift-default": ("swift", {}, {}, None),
    "swift-before": ("swift", {"deploy.batch_size": 16, "deploy.batch_window_ms": 0}, {"STYLEWRAP_CUDNN_SDPA": "1"}, None),
    "swift-one-at-a-time": ("swift", {"deploy.batch_size": 1}, {}, None),
    "swift-ungathered": ("swift", {"deploy.batch_window_ms": 0}, {}, None),
    "swift-cudnn-on": ("swift", {}, {"STYLEWRAP_CUDNN_SDPA": "1"}, None),
    "swift-bare-batch16": ("swift-bare", {"max_batch_size": 16}, {}, None),
    "lf-default": ("llamafactory", {}, {}, None),
    "lf-before": ("llamafactory", {}, {"STYLEWRAP_CUDNN_SDPA": "1"}, 0),
    "lf-concurrent16": ("llamafactory", {}, {"MAX_CONCURRENT": "16"}, None),
}


async def one_answer(session, url: str, model: str, question: str) -> dict:
    """A lone request not streamed: the server's time without its streaming path."""
    body = {"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": MAX_TOKENS,
            "temperature": 0.0}
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        reply = await response.json()
    return {"latency_s": time.perf_counter() - started, "completion_tokens": reply["usage"]["completion_tokens"]}


async def one_stream(session, url: str, model: str, question: str) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": question}], "stream": True,
            "max_tokens": MAX_TOKENS, "temperature": 0.0, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = None
    chunks = 0
    usage = None
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            event = json.loads(line[5:])
            if event.get("usage"):
                usage = event["usage"]
            if any((c.get("delta") or {}).get("content") for c in event.get("choices") or []):
                chunks += 1
                first = first or time.perf_counter()
    done = time.perf_counter()
    tokens = (usage or {}).get("completion_tokens") or chunks
    return {"ttft_s": (first or done) - started, "latency_s": done - started, "completion_tokens": tokens,
            "content_chunks": chunks}


async def measure(base_url: str, model: str, questions: list[str], streams: int) -> dict:
    url = f"{base_url}/v1/chat/completions"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
        single = await one_stream(session, url, model, questions[0])
        unstreamed = await one_answer(session, url, model, questions[0])
        if not streams:
            return {"single_stream": single, "single_not_streamed": unstreamed, "streams": 0}
        started = time.perf_counter()
        results = await asyncio.gather(*(one_stream(session, url, model, q) for q in questions[:streams]))
        wall = time.perf_counter() - started
    tokens = sum(r["completion_tokens"] for r in results)
    return {
        "single_stream": single, "single_not_streamed": unstreamed, "streams": streams, "wall_s": wall, "completion_tokens": tokens,
        "output_tokens_per_s": tokens / wall,
        "ttft_s": {"median": statistics.median(r["ttft_s"] for r in results), "max": max(r["ttft_s"] for r in results)},
        "latency_s": {"median": statistics.median(r["latency_s"] for r in results),
                      "max": max(r["latency_s"] for r in results)},
        "per_stream": results,
    }


def stylewrap(*args: str, cwd: Path, env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(["stylewrap", *args], cwd=cwd, check=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - started


def bare_swift_server(model: Path, extra: dict, env: dict, out: Path) -> subprocess.Popen:
    """ms-swift's own `swift deploy` module, no stylewrap launcher in front: what the launcher costs."""
    python = Path(os.environ.get("STYLEWRAP_ENVS_DIR", "/tmp/envs")) / "swift" / "bin" / "python"
    argv = [str(python), "-m", "swift.cli.deploy", "--model", str(model), "--template", "qwen", "--model_type", "qwen2",
            "--infer_backend", "transformers", "--served_model_name", "tsl", "--host", "127.0.0.1", "--port", str(PORT)]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    log = open(out / "server-swift-bare.log", "w")
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    import urllib.request
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/models", timeout=2)
            return server
        except OSError:
            time.sleep(1)
    server.kill()
    raise subprocess.CalledProcessError(server.wait(), argv)


def run_arm(name: str, model: Path, work: Path, questions: list[str], streams: int, repeat: int, out: Path) -> dict:
    backend, sets, env, arm_streams = ARMS[name]
    streams = streams if arm_streams is None else arm_streams
    if backend == "swift-bare":
        report = {"arm": name, "backend": "swift", "server_args": sets, "env": env, "max_tokens": MAX_TOKENS}
        started = time.perf_counter()
        server = bare_swift_server(model, sets, env, out)
        report["deploy_ready_s"] = time.perf_counter() - started
        try:
            report["rounds"] = [asyncio.run(measure(f"http://127.0.0.1:{PORT}", "tsl", questions, streams))
                                for _ in range(repeat)]
        finally:
            server.kill()
            server.wait()
        report["summary"] = summarize(report["rounds"])
        return report
    report = {"arm": name, "backend": backend, "set": sets, "env": env, "max_tokens": MAX_TOKENS}
    args = ["deploy", "--model", str(model), "--template", "qwen", "--backend", backend, "--port", str(PORT),
            "--detach", "--served-model-name", "tsl"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    try:
        report["deploy_ready_s"] = stylewrap(*args, cwd=work, env=env)
        report["rounds"] = [asyncio.run(measure(f"http://127.0.0.1:{PORT}", "tsl", questions, streams))
                            for _ in range(repeat)]
    except (subprocess.CalledProcessError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        report["error"] = repr(error)
    finally:
        subprocess.run(["stylewrap", "deploy", "stop", "--port", str(PORT)], cwd=work)
        if servers.log_path(PORT).is_file():
            shutil.copy(servers.log_path(PORT), out / f"server-{name}.log")
    if report.get("rounds"):
        report["summary"] = summarize(report["rounds"])
    return report


def summarize(rounds: list[dict]) -> dict:
    lone = {"single_latency_s", "single_tokens_per_s", "single_not_streamed_s"}
    return {key: _spread([pick(r) for r in rounds]) for key, pick in {
            "output_tokens_per_s": lambda r: r["output_tokens_per_s"],
            "latency_p50_s": lambda r: r["latency_s"]["median"],
            "ttft_p50_s": lambda r: r["ttft_s"]["median"],
            "single_latency_s": lambda r: r["single_stream"]["latency_s"],
            "single_tokens_per_s": lambda r: r["single_stream"]["completion_tokens"] / r["single_stream"]["latency_s"],
            "single_not_streamed_s": lambda r: r["single_not_streamed"]["latency_s"],
        }.items() if rounds[0]["streams"] or key in lone}


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# (arm, the arm it is compared with)
COMPARED = [("swift-default", "swift-before"), ("swift-default", "swift-one-at-a-time"),
            ("swift-ungathered", "swift-before"), ("swift-cudnn-on", "swift-before"),
            ("lf-default", "lf-before"), ("lf-concurrent16", "lf-default")]


def ratio_lines(reports: dict[str, dict]) -> list[str]:
    lines = []
    for name, baseline in COMPARED:
        now, then = (reports.get(arm, {}).get("summary") for arm in (name, baseline))
        if not now or not then:
            continue
        if "output_tokens_per_s" in now and "output_tokens_per_s" in then:
            agg, base_agg = now["output_tokens_per_s"]["median"], then["output_tokens_per_s"]["median"]
            p50, base_p50 = now["latency_p50_s"]["median"], then["latency_p50_s"]["median"]
            lone = now["single_latency_s"]["median"]
            lines.append(f"ratio: {name} / {baseline}, 16 streams: {agg:,.1f} / {base_agg:,.1f} tok/s = {agg / base_agg:.2f}x; "
                         f"p50 latency {p50:.2f} / {base_p50:.2f} s = {p50 / base_p50:.2f}x ({p50 / lone:.2f}x its lone request's {lone:.2f} s)")
        lone, base_lone = now["single_latency_s"]["median"], then["single_latency_s"]["median"]
        lines.append(f"ratio: {name} / {baseline}, a lone streamed request: {lone:.2f} / {base_lone:.2f} s = {lone / base_lone:.2f}x")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", type=Path, help="a model folder (a merged run is one)")
    target.add_argument("--run", type=Path, help="a trained run: exported (merged) first, then served")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arms", default="swift-before,swift-default,lf-before,lf-default,lf-concurrent16")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = (args.run.parent.parent if args.run else Path.cwd()).resolve()
    model = args.model
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "max_tokens": MAX_TOKENS, "arms": {}}
    if args.run:
        result["export_s"] = stylewrap("export", str(args.run), cwd=work)
        model = args.run / "merged"
    rows = json.loads(args.data.read_text(encoding="utf-8"))
    questions = list(dict.fromkeys(row["input"] for row in rows))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.arms.split(","):
        result["arms"][name] = run_arm(name, model.resolve(), work, questions, args.streams, args.repeat, args.out)
        print(json.dumps({k: v for k, v in result["arms"][name].items() if k != "rounds"}), flush=True)
        result["ratios"] = ratio_lines(result["arms"])
        (args.out / "serve.json").write_text(json.dumps(result, indent=2))
    print("\n".join(result["ratios"]))
    failed = [name for name, report in result["arms"].items() if "error" in report]
    if failed:
        raise SystemExit(f"failed arms: {', '.join(failed)}")


if __name__ == "__main__":
    main()
