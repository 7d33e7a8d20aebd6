"""What one GPU can give a chat server, without the server: greedy decoding of the 7B through
transformers' `generate` alone and through ms-swift's transformers engine, batches of 1 and 16.

The servers' figures (serve_bench.py) are read against these: the gap between `generate` and a
server is the server's own cost (request handling, streaming, batching), the gap between batch 1
and 16 what batching can give at most on this GPU.

    python bench/gpu/generate_ceiling.py --model DIR --data TslDial.json --out ceiling.json [--static]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

NEW_TOKENS = 128


def questions(data: Path, count: int) -> list[str]:
    rows = json.loads(data.read_text(encoding="utf-8"))
    return list(dict.fromkeys(row["input"] for row in rows))[:count]


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_generate(model, tokenizer, prompts: list[str], **generate_kwargs) -> dict:
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True).to(model.device)
    kwargs = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, **generate_kwargs)
    model.generate(**batch, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})   # warm-up (and compile)
    _synchronize()
    started = time.perf_counter()
    out = model.generate(**batch, **kwargs)
    _synchronize()
    seconds = time.perf_counter() - started
    new = out.shape[1] - batch["input_ids"].shape[1]
    return {"batch": len(prompts), "new_tokens": new, "seconds": seconds, "ms_per_step": 1000 * seconds / new,
            "tokens_per_s": len(prompts) * new / seconds}


def hf_generate(model_dir: Path, prompts: list[str], static: bool) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for size in (1, 16):
        results.append({"path": "transformers generate", **time_generate(model, tokenizer, prompts[:size])})
        print(results[-1], flush=True)
    if static:
        for size in (1, 16):
            started = time.perf_counter()
            row = time_generate(model, tokenizer, prompts[:size], cache_implementation="static")
            results.append({"path": "transformers generate, static cache (compiled)", "with_compile_s": time.perf_counter() - started, **row})
            print(results[-1], flush=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return results


def swift_engine(model_dir: Path, prompts: list[str]) -> list[dict]:
    from swift.infer_engine import InferRequest, RequestConfig, TransformersEngine

    engine = TransformersEngine(str(model_dir), model_type="qwen2", template_type="qwen", max_batch_size=16)
    config = RequestConfig(max_tokens=NEW_TOKENS, temperature=0)
    results = []
    for size in (1, 16):
        requests = [InferRequest(messages=[{"role": "user", "content": p}]) for p in prompts[:size]]
        engine.infer(requests[:1], RequestConfig(max_tokens=8, temperature=0))
        started = time.perf_counter()
        answers = engine.infer(requests, config)
        seconds = time.perf_counter() - started
        tokens = sum(a.usage.completion_tokens for a in answers)
        results.append({"path": "ms-swift TransformersEngine.infer", "batch": size, "new_tokens": tokens / size,
                        "seconds": seconds, "ms_per_step": 1000 * seconds * size / tokens, "tokens_per_s": tokens / seconds})
        print(results[-1], flush=True)
        # the same batch streamed, as a server answers it: generate in a thread, chunks built per token
        started = time.perf_counter()
        chunks = sum(1 for _ in engine._infer(requests, RequestConfig(max_tokens=NEW_TOKENS, temperature=0, stream=True)))
        seconds = time.perf_counter() - started
        results.append({"path": "ms-swift TransformersEngine streamed", "batch": size, "steps_streamed": chunks,
                        "seconds": seconds, "ms_per_step": 1000 * seconds / NEW_TOKENS,
                        "tokens_per_s": size * NEW_TOKENS / seconds})
        print(results[-1], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--static", action="store_true", help="also a static KV cache, which transformers compiles")
    parser.add_argument("--only", choices=("hf", "swift"))
    args = parser.parse_args()
    prompts = questions(args.data, 16)
    results = []
    if args.only in (None, "hf"):
        results += hf_generate(args.model, prompts, args.static)
    if args.only in (None, "swift"):
        results += swift_engine(args.model, prompts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
