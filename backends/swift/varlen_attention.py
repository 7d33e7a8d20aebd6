"""ms-swift plugin (`external_plugins`): packed rows through PyTorch's variable-length FlashAttention.

Runs inside the swift env (torch, transformers, ms-swift; no stylewrap). ms-swift packs rows only
with flash-attn, which has no wheel for every torch build; with a block mask SDPA falls back to a
kernel that computes the whole T x T attention of a packed micro-batch (about 1.2 s of a 16k-token
7B step on an H200). PyTorch ships FlashAttention's varlen kernel itself
(`torch.nn.attention.varlen`, 2.10+): each packed row attends only to itself, at flash speed.

Importing this file (ms-swift does, from `external_plugins`, before it checks its arguments):
  * registers the attention implementation `stylewrap_varlen` with transformers (attention function
    and mask function), so `attn_impl: stylewrap_varlen` selects it;
  * lets ms-swift pack (`packing`/`padding_free`) with that implementation only; every other
    implementation keeps ms-swift's own check (packing needs flash attention).

The rows of a packed micro-batch are found from `position_ids` restarting at 0, the layout ms-swift's
padding-free collator produces (one row, no attention mask). Only where no 2D attention mask was
given and queries and keys have the same length is the mask left out; a padded or cached call gets
SDPA's own mask and SDPA, so nothing is ever silently mixed. The varlen entry point is private
PyTorch API: it is used only on the torch versions below, on a CUDA GPU of compute capability 8.0+,
in bf16/fp16; otherwise the implementation is SDPA with transformers' block-diagonal mask (correct,
slower), and the reason is logged once.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Callable, Optional

import torch

NAME = "stylewrap_varlen"
# torch minor versions whose torch.nn.attention.varlen this was written and checked against
# (2.10: is_causal=; 2.11+: window_size=(-1, 0) for causal)
TORCH_VERSIONS = ((2, 10), (2, 13))
FLASH_DTYPES = (torch.bfloat16, torch.float16)

logger = logging.getLogger("stylewrap.varlen_attention")

Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, float], torch.Tensor]


def torch_version(text: str = torch.__version__) -> tuple[int, int]:
    major, minor = text.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def load_kernel(version: tuple[int, int] | None = None, cuda: bool | None = None) -> tuple[Optional[Kernel], str]:
    """The causal varlen kernel `(q, k, v, cu_seqlens, max_len, scale) -> out` on (tokens, heads, dim)
    tensors, or None and why it cannot be used here."""
    version = version or torch_version()
    low, high = TORCH_VERSIONS
    shown = ".".join(map(str, version))
    if version < low:
        return None, f"torch {shown} has no torch.nn.attention.varlen (added in {low[0]}.{low[1]})"
    if version > high:
        return None, (f"torch {shown} is newer than {high[0]}.{high[1]}, the last version whose private varlen "
                      "entry point this plugin was checked against")
    if not (torch.cuda.is_available() if cuda is None else cuda):
        return None, "no CUDA device: the varlen kernel is FlashAttention's, GPU only"
    major, minor = torch.cuda.get_device_capability()
    if major < 8:
        return None, f"FlashAttention needs compute capability 8.0+, this GPU has {major}.{minor}"
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError as error:
        return None, f"torch {shown}: {error}"
    params = inspect.signature(varlen_attn).parameters
    if "window_size" in params:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in params:
        causal = {"is_causal": True}
    else:
        return None, f"torch {shown}: varlen_attn takes neither window_size nor is_causal"
    return make_kernel(varlen_attn, causal, gqa="enable_gqa" in params, scale="scale" in params), ""


def make_kernel(varlen_attn: Callable, causal: dict, *, gqa: bool, scale: bool) -> Kernel:
    """Adapts one torch version's varlen_attn: grouped-query heads and the softmax scale passed where
    it takes them, else expanded / folded into the queries."""

    def kernel(q, k, v, cu_seqlens, max_len, softmax_scale):
        extra = dict(causal)
        if gqa:
            extra["enable_gqa"] = k.shape[1] != q.shape[1]
        elif k.shape[1] != q.shape[1]:
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if scale:
            extra["scale"] = softmax_scale
        elif not math.isclose(softmax_scale, q.shape[-1] ** -0.5):
            q = q * (softmax_scale * math.sqrt(q.shape[-1]))
        return varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len, **extra)

    return kernel


class Segments:
    """cu_seqlens of the packed rows from position_ids, computed once per forward pass: every layer
    gets the same position_ids tensor object. The cache holds that object, so a later batch's tensor
    can never pass for it (a freed tensor's address and id are reused), and its version counter, so
    an in-place change is seen."""

    def __init__(self):
        self._tensor = None
        self._key = None
        self._value = None

    def __call__(self, position_ids: torch.Tensor, batch: int, length: int) -> tuple[torch.Tensor, int]:
        key = (position_ids._version, batch, length)
        if position_ids is not self._tensor or key != self._key:
            self._tensor, self._key = position_ids, key
            self._value = packed_segments(position_ids, batch, length)
        return self._value


def packed_segments(position_ids: torch.Tensor, batch: int, length: int) -> tuple[torch.Tensor, int]:
    """(cu_seqlens int32 of the flattened batch, longest row): a row starts where its position is 0
    and at the start of every batch row."""
    positions = position_ids.expand(batch, length).reshape(-1)
    starts = positions == 0
    starts[::length] = True
    bounds = torch.nonzero(starts).flatten()
    cu_seqlens = torch.cat([bounds, bounds.new_tensor([positions.numel()])]).to(torch.int32)
    return cu_seqlens, int(cu_seqlens.diff().max())


def build_attention(kernel: Kernel, sdpa_forward: Callable, segments: Segments | None = None) -> Callable:
    """A transformers attention function: varlen where the call is a packed or plain causal one
    without a mask, SDPA (with whatever mask it was given) otherwise."""
    segments = segments or Segments()

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        position_ids = kwargs.get("position_ids")
        batch, heads, length, dim = query.shape
        if (attention_mask is not None or position_ids is None or key.shape[2] != length
                or query.dtype not in FLASH_DTYPES or dropout or kwargs.get("sliding_window")):
            return sdpa_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        cu_seqlens, longest = segments(position_ids, batch, length)
        flat = lambda states: states.transpose(1, 2).reshape(batch * length, states.shape[1], dim)  # noqa: E731
        scale = scaling if scaling is not None else dim ** -0.5
        out = kernel(flat(query), flat(key), flat(value), cu_seqlens, longest, scale)
        return out.view(batch, length, heads, dim), None

    return attention


def build_mask(sdpa_mask: Callable) -> Callable:
    """transformers' mask function for this implementation: no mask where the attention function
    goes varlen (no 2D mask, as many keys as queries, no sliding window), SDPA's mask otherwise."""

    def mask(*args, **kwargs):
        config = kwargs.get("config")
        if (kwargs.get("attention_mask") is None and kwargs.get("q_length") is not None
                and kwargs.get("kv_length") == kwargs.get("q_length")
                and not getattr(config, "use_sliding_window", False)):
            return None
        return sdpa_mask(*args, **kwargs)

    return mask


def register(kernel: Optional[Kernel], reason: str) -> None:
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if kernel is None:
        logger.warning("%s: SDPA with a block-diagonal mask instead of the varlen kernel (%s); packed rows "
                       "stay apart but each step computes the full attention", NAME, reason)
        AttentionInterface.register(NAME, sdpa_attention_forward)
        AttentionMaskInterface.register(NAME, sdpa_mask)
        return
    AttentionInterface.register(NAME, build_attention(kernel, sdpa_attention_forward))
    AttentionMaskInterface.register(NAME, build_mask(sdpa_mask))


def allow_packing_in_swift() -> None:
    """ms-swift refuses packing/padding_free unless attn_impl is a flash attention; this implementation
    separates packed rows too, so it is let through (and only it)."""
    from swift.arguments.sft_args import SftArguments

    check = SftArguments._check_padding_free
    if getattr(check, "_stylewrap_varlen", False):
        return

    def _check_padding_free(self):
        if self.attn_impl == NAME:
            if self.packing:
                self.padding_free = True
            return
        return check(self)

    _check_padding_free._stylewrap_varlen = True
    SftArguments._check_padding_free = _check_padding_free


register(*load_kernel())
try:
    allow_packing_in_swift()
except ImportError:   # loaded outside ms-swift (tests, other callers): the attention is registered all the same
    pass
