"""datagen throughput: the seed design vs stylewrap, side by side against one local server.

The server (tests/fakeopenai.py, its own process) answers every chat request after a fixed
latency, so the ideal rate at concurrency C is C / latency. Measured in one run:
  (a) the seed design: 8 worker threads, each with a blocking openai.OpenAI client, one request
      at a time;
  (b) a bare openai.AsyncOpenAI (typed chat.completions.create, default connection pool) at 256,
      the baseline the issue measured;
  (c) stylewrap's stylize stage (parsing, validation, checkpointing included) at concurrency 64
      and 256.
Prints requests/s, the ratio to (a), the fraction of the ideal, and client CPU ms per request.

    .venv/bin/python bench/datagen.py [--latency 0.3] [--seconds 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fakeopenai import FakeServer  # noqa: E402

MODEL = "teacher-1"
KEY = "test-key"


def plain_dialogues(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            messages = [{"role": "user", "content": f"第{number}个问题：周末你一般做什么？"},
                        {"role": "assistant", "content": "我一般会去公园跑步，然后在家做饭。"}]
            handle.write(json.dumps({"id": f"dlg-{number:06d}", "topic": "生活", "messages": messages, "usage": {}}, ensure_ascii=False) + "\n")
    return path


def seed_design(base_url: str, requests: int, threads: int = 8) -> tuple[float, float]:
    """What the seed's scripts did: N threads, one blocking request each at a time."""
    from openai import OpenAI

    from stylewrap.datagen.styles import load_style
    from stylewrap.datagen.stages import few_shot

    preset = load_style("translational")
    prefix = [{"role": "system", "content": preset.render("stylize_system")}, *few_shot(preset)]
    counter = iter(range(requests))
    lock = threading.Lock()

    def work() -> None:
        client = OpenAI(api_key=KEY, base_url=base_url, max_retries=0)
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                return
            dialogue = {"dialogue": [{"user": f"第{number}个问题", "assistant": "好的。"}]}
            reply = client.chat.completions.create(
                model=MODEL, messages=prefix + [{"role": "user", "content": json.dumps(dialogue, ensure_ascii=False)}],
                extra_headers={"X-Stylewrap-Stage": "stylize"},
            )
            json.loads(reply.choices[0].message.content)

    cpu, start = time.process_time(), time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return requests / (time.perf_counter() - start), (time.process_time() - cpu) / requests * 1000


def bare_async_client(base_url: str, concurrency: int, requests: int) -> tuple[float, float]:
    """A plain AsyncOpenAI with its defaults, `concurrency` coroutines in a loop."""
    import asyncio

    from openai import AsyncOpenAI

    async def drive() -> None:
        client = AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
        counter = iter(range(requests))

        async def work() -> None:
            for number in counter:
                dialogue = {"dialogue": [{"user": f"第{number}个问题", "assistant": "好的。"}]}
                reply = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": json.dumps(dialogue, ensure_ascii=False)}],
                    extra_headers={"X-Stylewrap-Stage": "stylize"},
                )
                json.loads(reply.choices[0].message.content)

        await asyncio.gather(*(work() for _ in range(concurrency)))
        await client.close()

    cpu, start = time.process_time(), time.perf_counter()
    asyncio.run(drive())
    return requests / (time.perf_counter() - start), (time.process_time() - cpu) / requests * 1000


def stylewrap_stage(base_url: str, concurrency: int, requests: int, workdir: Path) -> tuple[float, float]:
    from stylewrap.config import load_config
    from stylewrap.datagen.pipeline import DatagenJob, run_datagen

    workdir.mkdir(parents=True, exist_ok=True)
    source = plain_dialogues(workdir / f"plain-{concurrency}.jsonl", requests)
    config = load_config(None, [
        f"datagen.base_url={base_url}", f"datagen.teacher_model={MODEL}", f"datagen.concurrency={concurrency}",
        f"datagen.output_dir={workdir / f'out-{concurrency}'}", "datagen.seed=null",
    ], search=False)
    os.environ["OPENAI_API_KEY"] = KEY
    cpu, start = time.process_time(), time.perf_counter()
    manifest = run_datagen(config, DatagenJob(stages=("stylize",), input_file=source, show_progress=False))
    elapsed = time.perf_counter() - start
    assert manifest["stages"]["stylize"]["done"] == requests, manifest["stages"]
    return requests / elapsed, (time.process_time() - cpu) / requests * 1000


def best(measure, repeat: int) -> tuple[float, float]:
    """The fastest of `repeat` runs (with its CPU per request): on a shared machine the slower
    runs measure the neighbours."""
    return max((measure() for _ in range(repeat)), key=lambda result: result[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, default=8.0, help="target duration of each measurement")
    parser.add_argument("--repeat", type=int, default=1, help="report the best of this many runs per row")
    args = parser.parse_args()
    server = FakeServer(latency=args.latency)
    rows = []
    try:
        server.script(latency=args.latency)
        url = server.base_url
        seed_requests = int(8 / args.latency * args.seconds)
        rows.append(("seed: 8 threads, blocking", 8, *best(lambda: seed_design(url, seed_requests), args.repeat)))
        rows.append(("bare AsyncOpenAI, default pool, 256", 256, *best(lambda: bare_async_client(url, 256, 256 * 4), args.repeat)))
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in (64, 256):
                requests = int(concurrency / args.latency * args.seconds * 0.6)
                runs = iter(range(args.repeat))
                result = best(lambda: stylewrap_stage(url, concurrency, requests, Path(tmp) / str(next(runs))), args.repeat)
                rows.append((f"stylewrap stylize, concurrency {concurrency}", concurrency, *result))
    finally:
        server.stop()
    print(f"latency {args.latency * 1000:.0f} ms, {os.cpu_count()} CPUs, server in its own process, "
          f"load average {os.getloadavg()[0]:.1f}, best of {args.repeat}")
    print(f"{'design':<36} {'req/s':>8} {'x seed':>7} {'of ideal':>9} {'client CPU ms/req':>18}")
    for name, concurrency, rate, cpu_ms in rows:
        ideal = concurrency / args.latency
        print(f"{name:<36} {rate:>8.1f} {rate / rows[0][2]:>6.1f}x {rate / ideal:>8.0%} {cpu_ms:>18.2f}")


if __name__ == "__main__":
    main()
