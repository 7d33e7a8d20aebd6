"""Why ms-swift's streamed answers are slower than its whole ones on the GPU: the same greedy decoding
of one question (128 tokens) in variants that add one part of the streamed path at a time, plus a
sample of where each thread is while a streamed answer runs (sys._current_frames every 2 ms).

    python bench/gpu/stream_diag.py --model DIR --data TslDial.json --out stream-diag.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from pathlib import Path

NEW_TOKENS = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import torch
    from swift.infer_engine import InferRequest, RequestConfig, TransformersEngine
    from swift.infer_engine.utils import TokensIteratorStreamer

    question = json.loads(args.data.read_text(encoding="utf-8"))[0]["input"]
    engine = TransformersEngine(str(args.model), model_type="qwen2", template_type="qwen", max_batch_size=16)
    model, tokenizer = engine.model, engine.tokenizer
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True).to(model.device)
    kwargs = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    results = {}

    def timed(name, fn):
        fn()   # warm
        torch.cuda.is_available() and torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        torch.cuda.is_available() and torch.cuda.synchronize()
        results[name] = 1000 * (time.perf_counter() - started) / NEW_TOKENS
        print(f"{name}: {results[name]:.1f} ms/token", flush=True)

    def main_thread():
        model.generate(**ids, **kwargs)

    def in_thread(streamer=None):
        def run():
            thread = threading.Thread(target=model.generate, kwargs={**ids, **kwargs, **({"streamer": streamer()} if streamer else {})})
            if streamer is None:
                thread.start()
                thread.join()
                return
            stream = thread._kwargs["streamer"]
            thread.start()
            for _ in stream:
                pass
            thread.join()
        return run

    request = [InferRequest(messages=[{"role": "user", "content": question}])]

    def swift_streamed():
        for _ in engine._infer(request, RequestConfig(max_tokens=NEW_TOKENS, temperature=0, stream=True)):
            pass

    def swift_whole():
        engine._infer(request, RequestConfig(max_tokens=NEW_TOKENS, temperature=0))

    timed("generate, main thread", main_thread)
    timed("generate in a thread, joined", in_thread())
    timed("generate in a thread, tokens read from its streamer", in_thread(TokensIteratorStreamer))
    timed("ms-swift whole answer", swift_whole)
    timed("ms-swift streamed", swift_streamed)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    timed("ms-swift streamed, GIL switch interval 0.2 ms", swift_streamed)
    sys.setswitchinterval(interval)

    # where each thread is while a streamed answer runs
    samples: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    done = threading.Event()

    def sampler():
        me = threading.get_ident()
        names = {}
        while not done.is_set():
            for thread in threading.enumerate():
                names[thread.ident] = thread.name
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                stack = []
                while frame is not None and len(stack) < 4:
                    stack.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}:{frame.f_lineno}")
                    frame = frame.f_back
                samples[names.get(ident, str(ident))][" < ".join(stack)] += 1
            time.sleep(0.002)

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    swift_streamed()
    done.set()
    watcher.join()
    results["samples"] = {name: counter.most_common(12) for name, counter in samples.items()}
    for name, top in results["samples"].items():
        print(name, json.dumps(top[:8], indent=1, ensure_ascii=False), flush=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
