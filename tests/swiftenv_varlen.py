"""Checks of backends/swift/varlen_attention.py, run in the swift env's python (torch, transformers,
ms-swift) by tests/unit/test_varlen_attention.py; CPU only. Prints `ok <check>` per check passed.

What a user needs from the plugin: a packed micro-batch (rows concatenated, positions restarting at
0, no attention mask) trains every row exactly as if it were alone. Checked on a tiny Qwen2 with
grouped-query heads: the logits of each packed row equal that row run by itself, through
  * the fallback the plugin takes here (no CUDA: SDPA with transformers' block-diagonal mask), and
  * the varlen path itself, with a reference kernel standing in for FlashAttention's (the CPU has
    none): the segments, reshapes, heads and scale the plugin hands a kernel.
"""

from __future__ import annotations

import importlib.util
import sys

import torch

PLUGIN = sys.argv[1]


def load_plugin():
    spec = importlib.util.spec_from_file_location("stylewrap_varlen_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_qwen(attn: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         attn_implementation=attn)
    return Qwen2ForCausalLM(config).eval()


def rows_alone_vs_packed(model, dtype=torch.float32) -> float:
    """Largest difference between each row's logits run alone and the same row inside a packed batch."""
    torch.manual_seed(1)
    rows = [torch.randint(0, 64, (n,)) for n in (7, 12, 5)]
    model = model.to(dtype)
    with torch.no_grad():
        alone = [model(input_ids=row[None], use_cache=False).logits[0] for row in rows]
        packed_ids = torch.cat(rows)[None]
        positions = torch.cat([torch.arange(len(row)) for row in rows])[None]
        packed = model(input_ids=packed_ids, position_ids=positions, use_cache=False).logits[0]
    return max((packed[start:start + len(row)] - ref).abs().max().item()
               for row, ref, start in zip(rows, alone, [0, 7, 19]))


def reference_varlen(q, k, v, cu_seqlens, max_len, scale):
    """What FlashAttention's varlen kernel computes, segment by segment, on (tokens, heads, dim)."""
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds, bounds[1:]):
        segment = [t[start:end].transpose(0, 1) for t in (q, k, v)]
        out[start:end] = torch.nn.functional.scaled_dot_product_attention(
            *segment, is_causal=True, scale=scale).transpose(0, 1)
    return out


def main() -> None:
    plugin = load_plugin()

    kernel, reason = plugin.load_kernel()
    assert kernel is None and "no CUDA device" in reason, reason
    assert "2.10" in plugin.load_kernel(version=(2, 9), cuda=True)[1]
    assert "newer than" in plugin.load_kernel(version=(2, 99), cuda=True)[1]
    print("ok guards")

    # the fallback registered on this CPU: packed rows stay apart
    gap = rows_alone_vs_packed(tiny_qwen(plugin.NAME))
    assert gap < 1e-4, f"fallback mixes packed rows: {gap}"
    print(f"ok fallback keeps packed rows apart (max logit difference {gap:.2e})")

    # the varlen path, the FlashAttention kernel replaced by a reference of what it computes; the
    # adapter of a torch without enable_gqa/scale (2.10's signature) expands heads itself
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    calls = []

    def fake_varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False):
        assert is_causal and torch.equal(cu_q, cu_k) and max_q == max_k
        calls.append((cu_q.tolist(), max_q, k.shape[1]))
        return reference_varlen(q, k, v, cu_q, max_q, q.shape[-1] ** -0.5)

    kernel = plugin.make_kernel(fake_varlen_attn, {"is_causal": True}, gqa=False, scale=False)
    AttentionInterface.register("varlen_check", plugin.build_attention(kernel, sdpa_attention_forward))
    AttentionMaskInterface.register("varlen_check", plugin.build_mask(sdpa_mask))
    model = tiny_qwen("varlen_check")
    gap = rows_alone_vs_packed(model, torch.bfloat16)
    reference = rows_alone_vs_packed(tiny_qwen("sdpa"), torch.bfloat16)
    assert gap <= max(2 * reference, 0.05), f"varlen path mixes packed rows: {gap} (sdpa: {reference})"
    assert calls and calls[-1] == ([0, 7, 19, 24], 12, 4), calls[-1]   # 3 rows, heads expanded 2 -> 4
    print(f"ok varlen path keeps packed rows apart (max logit difference {gap:.2e}, bf16)")

    # a new batch never gets the last one's rows, even in a tensor at the same address
    segments = plugin.Segments()
    for step in range(20):   # each step's positions freed before the next's are made, as in training
        cut = 1 + step % 5
        positions = torch.empty(1, 6, dtype=torch.long)   # reuses the last step's freed memory
        positions[0, :cut], positions[0, cut:] = torch.arange(cut), torch.arange(6 - cut)
        assert segments(positions, 1, 6)[0].tolist() == [0, cut, 6], f"step {step} got an earlier batch's rows"
        del positions
    positions = torch.tensor([[0, 1, 2, 0, 1, 2]])
    segments(positions, 1, 6)
    positions.copy_(torch.tensor([[0, 1, 0, 1, 2, 3]]))
    assert segments(positions, 1, 6)[0].tolist() == [0, 2, 6], "an in-place change went unseen"
    print("ok segments are never stale")

    # a padded batch (2D mask) is never sent to the varlen kernel: SDPA with its mask
    calls.clear()
    with torch.no_grad():
        ids = torch.randint(0, 64, (2, 6))
        mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
        padded = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        alone = model(input_ids=ids[1:, 2:], use_cache=False).logits
    assert not any(max_q == 6 for _, max_q, _ in calls), "a padded batch went to the varlen kernel"
    assert (padded[1, 2:] - alone[0]).abs().max().item() < 0.05
    print("ok padded batches keep SDPA and their mask")

    # ms-swift lets packing through for this implementation only
    from swift.arguments.sft_args import SftArguments

    class Args:
        packing, padding_free = True, False

    ours, other = Args(), Args()
    ours.attn_impl, other.attn_impl = plugin.NAME, "sdpa"
    SftArguments._check_padding_free(ours)
    assert ours.padding_free is True
    try:
        SftArguments._check_padding_free(other)
    except ValueError as error:
        assert "flash attention" in str(error)
    else:
        raise AssertionError("packing on plain SDPA was let through")
    print("ok ms-swift packs with stylewrap_varlen only")


if __name__ == "__main__":
    main()
