"""The varlen attention of backends/swift/varlen_attention.py on the GPU, one 7B layer's shape: is it
right, and what does it save against SDPA with a block-diagonal mask?

One packed micro-batch of 16,384 tokens made of rows as long as TslDial's (about 74 tokens), Qwen2.5-7B's
attention (28 query heads, 4 key/value heads, head dim 128), bf16. Output and gradients are compared
with each row's own causal SDPA in fp32; forward+backward is timed (CUDA events, median of 20 after 5
warm-ups) for the plugin's kernel and for SDPA with the block mask ms-swift would need without it.

    python bench/gpu/varlen_check.py backends/swift/varlen_attention.py --out results.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics

import torch
import torch.nn.functional as F

TOKENS, HEADS, KV_HEADS, DIM, LAYERS = 16384, 28, 4, 128, 28
PACK = 1024   # LLaMA-Factory's packed sequence: cutoff_len


def load(path):
    spec = importlib.util.spec_from_file_location("varlen_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row_lengths(total: int, generator: torch.Generator) -> list[int]:
    lengths = []
    while sum(lengths) < total:
        lengths.append(int(torch.randint(30, 200, (1,), generator=generator)))
    lengths[-1] -= sum(lengths) - total
    return [n for n in lengths if n > 0]


def timed(step, repeats=20, warmup=5) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plugin")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    plugin = load(args.plugin)
    kernel, reason = plugin.load_kernel()
    result = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "kernel": kernel is not None,
              "fallback_reason": reason}
    print(json.dumps(result), flush=True)
    if kernel is None:
        json.dump(result, open(args.out, "w"), indent=2)
        raise SystemExit(1)

    generator = torch.Generator().manual_seed(0)
    lengths = row_lengths(TOKENS, generator)
    positions = torch.cat([torch.arange(n) for n in lengths]).cuda()[None]
    cu_seqlens, longest = plugin.packed_segments(positions, 1, TOKENS)
    q = torch.randn(TOKENS, HEADS, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(TOKENS, KV_HEADS, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(TOKENS, KV_HEADS, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randn(TOKENS, HEADS, DIM, device="cuda", dtype=torch.bfloat16)
    scale = DIM ** -0.5

    def varlen():
        return kernel(q, k, v, cu_seqlens, longest, scale)

    def reference():
        """Each row alone, causal SDPA in fp32."""
        out = []
        bounds = cu_seqlens.tolist()
        for a, b in zip(bounds, bounds[1:]):
            qs, ks, vs = (t[a:b].float().transpose(0, 1) for t in (q, k, v))
            out.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale,
                                                      enable_gqa=True).transpose(0, 1))
        return torch.cat(out)

    grads = {}
    for name, fn in (("varlen", varlen), ("reference", reference)):
        q.grad = k.grad = v.grad = None
        out = fn()
        out.backward(grad.to(out.dtype))
        grads[name] = (out.detach().float(), q.grad.float(), k.grad.float(), v.grad.float())
    errors = {}
    for i, label in enumerate(("out", "dq", "dk", "dv")):
        ref = grads["reference"][i]
        errors[label] = float((grads["varlen"][i] - ref).norm() / ref.norm())
    result["relative_error_vs_rows_alone_fp32"] = errors

    segment = torch.repeat_interleave(torch.arange(len(lengths), device="cuda"), torch.tensor(lengths, device="cuda"))
    block = (segment[:, None] == segment[None, :]) & torch.ones(TOKENS, TOKENS, dtype=torch.bool, device="cuda").tril()
    q4, k4, v4 = (t.detach().transpose(0, 1)[None].requires_grad_() for t in (q, k, v))
    grad4 = grad.transpose(0, 1)[None]

    def sdpa_block():
        out = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=block[None, None], scale=scale, enable_gqa=True)
        out.backward(grad4)

    def varlen_step():
        varlen().backward(grad)

    result["rows"] = len(lengths)
    result["tokens"] = TOKENS
    result["varlen_fwd_bwd_s_per_layer"] = timed(varlen_step)
    result["sdpa_block_mask_fwd_bwd_s_per_layer"] = timed(sdpa_block)
    result["per_step_28_layers_s"] = {"varlen": result["varlen_fwd_bwd_s_per_layer"] * LAYERS,
                                      "sdpa_block_mask": result["sdpa_block_mask_fwd_bwd_s_per_layer"] * LAYERS}
    result["llamafactory_shape"] = llamafactory_shape(plugin, kernel, generator)
    print(json.dumps(result, indent=2), flush=True)
    json.dump(result, open(args.out, "w"), indent=2)
    worst = max(errors.values())
    if worst > 2e-2:
        raise SystemExit(f"varlen differs from the rows alone: {errors}")


def llamafactory_shape(plugin, kernel, generator: torch.Generator) -> dict:
    """LLaMA-Factory's neat packing: 16 sequences of 1,024 tokens, each holding whole rows, and SDPA
    given a [16, 1, 1024, 1024] block-diagonal causal mask (what its collator builds without
    flash-attn), against the varlen kernel over the same rows and plain causal SDPA over the 16
    sequences (no mask: rows would see each other; the floor any mask can reach)."""
    lengths = [n for _ in range(TOKENS // PACK) for n in row_lengths(PACK, generator)]
    positions = torch.cat([torch.arange(n) for n in lengths]).cuda()[None]
    cu_seqlens, longest = plugin.packed_segments(positions, 1, TOKENS)
    scale = DIM ** -0.5
    q, k, v = (torch.randn(TOKENS, heads, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for heads in (HEADS, KV_HEADS, KV_HEADS))
    grad = torch.randn(TOKENS, HEADS, DIM, device="cuda", dtype=torch.bfloat16)
    packs = TOKENS // PACK
    segment = torch.repeat_interleave(torch.arange(len(lengths), device="cuda"),
                                      torch.tensor(lengths, device="cuda")).view(packs, PACK)
    causal = torch.ones(PACK, PACK, dtype=torch.bool, device="cuda").tril()
    mask = ((segment[:, :, None] == segment[:, None, :]) & causal)[:, None]
    q4, k4, v4 = (t.detach().view(packs, PACK, -1, DIM).transpose(1, 2).requires_grad_() for t in (q, k, v))
    grad4 = grad.view(packs, PACK, HEADS, DIM).transpose(1, 2)

    def sdpa_mask():
        F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask, scale=scale, enable_gqa=True).backward(grad4)

    def sdpa_causal():
        F.scaled_dot_product_attention(q4, k4, v4, is_causal=True, scale=scale, enable_gqa=True).backward(grad4)

    def varlen_step():
        kernel(q, k, v, cu_seqlens, longest, scale).backward(grad)

    per_layer = {"sdpa_block_mask": timed(sdpa_mask), "varlen": timed(varlen_step), "sdpa_causal_no_mask": timed(sdpa_causal)}
    return {"sequences": packs, "sequence_tokens": PACK, "rows": len(lengths), "fwd_bwd_s_per_layer": per_layer,
            "per_step_28_layers_s": {name: seconds * LAYERS for name, seconds in per_layer.items()}}


if __name__ == "__main__":
    main()
