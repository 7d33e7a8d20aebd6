"""Export (merge) a trained run and serve it with `stylewrap deploy`, then time chat on the GPU.

16 streaming chat requests (TslDial questions, same generation settings so the server can batch
them) go out at once; per stream: time to first token and total latency; overall: completion
tokens per second. One lone request first gives the single-stream latency.

    python bench/gpu/serve_bench.py RUN_DIR --data TslDial.json --out results/ [--backend swift]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp

PORT = 8011
MAX_TOKENS = 128


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
    return {"ttft_s": (first or done) - started, "latency_s": done - started, "completion_tokens": tokens}


async def measure(base_url: str, model: str, questions: list[str], streams: int) -> dict:
    url = f"{base_url}/v1/chat/completions"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        single = await one_stream(session, url, model, questions[0])
        started = time.perf_counter()
        results = await asyncio.gather(*(one_stream(session, url, model, q) for q in questions[:streams]))
        wall = time.perf_counter() - started
    tokens = sum(r["completion_tokens"] for r in results)
    return {
        "single_stream": single,
        "streams": streams, "wall_s": wall, "completion_tokens": tokens,
        "output_tokens_per_s": tokens / wall,
        "ttft_s": {"median": statistics.median(r["ttft_s"] for r in results), "max": max(r["ttft_s"] for r in results)},
        "latency_s": {"median": statistics.median(r["latency_s"] for r in results),
                      "max": max(r["latency_s"] for r in results)},
        "per_stream": results,
    }


def stylewrap(*args: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["stylewrap", *args], cwd=cwd, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", default="swift")
    parser.add_argument("--streams", type=int, default=16)
    args = parser.parse_args()
    work = args.run_dir.parent.parent
    rows = json.loads(args.data.read_text(encoding="utf-8"))
    questions = list(dict.fromkeys(row["input"] for row in rows))
    report = {"run_dir": str(args.run_dir), "backend": args.backend, "max_tokens": MAX_TOKENS}
    report["export_s"] = stylewrap("export", str(args.run_dir), cwd=work)
    # ms-swift cannot tell the architecture of a local folder named "merged"; batch the concurrent streams
    extra = {"max_batch_size": args.streams, "model_type": "qwen2"} if args.backend == "swift" else {}
    # serve the merged folder itself: `deploy --run` serves base + adapter, and ms-swift 4.6 + peft 0.20 fail
    # to batch concurrent requests through an unmerged adapter ("Length of `adapter_names` ...")
    report["deploy_ready_s"] = stylewrap(
        "deploy", "--model", str(args.run_dir / "merged"), "--template", "qwen", "--backend", args.backend, "--port", str(PORT), "--detach",
        "--served-model-name", "tsl", "--set", f"deploy.extra_args={json.dumps(extra)}", cwd=work)
    try:
        report.update(asyncio.run(measure(f"http://127.0.0.1:{PORT}", "tsl", questions, args.streams)))
    finally:
        subprocess.run(["stylewrap", "deploy", "stop", "--port", str(PORT)], cwd=work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"serve-{args.backend}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "per_stream"}, indent=2))


if __name__ == "__main__":
    main()
