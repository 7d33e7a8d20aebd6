"""Throughput probe loaded into a backend's Python by a .pth line; inert unless GPUBENCH_OUT is set.

It wraps `transformers.Trainer` (which LLaMA-Factory's and ms-swift's trainers subclass) as soon as
`transformers.trainer` is imported: every micro-batch the trainer feeds is counted on the host
(non-pad tokens, supervised label tokens, per-sequence lengths for the attention FLOPs), and a
callback times the optimizer steps after GPUBENCH_WARMUP_STEPS with the device synchronized. After
every measured step it rewrites GPUBENCH_OUT/probe-rank<N>.json, so a run cut short still reports.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import json
import os
import sys
import time
from collections.abc import Mapping

OUT_DIR = os.environ.get("GPUBENCH_OUT")
WARMUP_STEPS = int(os.environ.get("GPUBENCH_WARMUP_STEPS", "5"))
IGNORE_INDEX = -100

counters = {"tokens": 0, "label_tokens": 0, "sum_sq_seq_len": 0, "sequences": 0, "micro_batches": 0}
shapes: dict[str, int] = {}


def _sequence_lengths(inputs, pad_id):
    """Lengths of the real sequences in one micro-batch: padding-free/packed rows split at position resets."""
    import torch

    input_ids = inputs["input_ids"]
    position_ids = inputs.get("position_ids")
    mask = inputs.get("attention_mask")
    if position_ids is not None and position_ids.dim() == 2 and (mask is None or mask.dim() != 2):
        # padding-free rows, or packed rows whose mask is already 4D: sequences restart at position 0;
        # packing pads carry position 0 too, so count only the non-pad tokens of each segment
        lengths = []
        for row, ids in zip(position_ids, input_ids):
            starts = torch.nonzero(row == 0).flatten().tolist() + [row.numel()]
            real = ids != pad_id if pad_id is not None else torch.ones_like(ids, dtype=torch.bool)
            lengths += [int(real[a:b].sum()) for a, b in zip(starts, starts[1:]) if b > a]
        return lengths
    if mask is not None and mask.dim() == 2:
        if mask.max() > 1:  # LLaMA-Factory's neat packing numbers the sequences 1, 2, 3 ... in the mask
            return [int((row == i).sum()) for row in mask for i in range(1, int(row.max()) + 1)]
        return (mask != 0).sum(dim=1).tolist()
    if pad_id is None:
        return [input_ids.shape[1]] * input_ids.shape[0]
    return (input_ids != pad_id).sum(dim=1).tolist()


def _count(trainer, inputs) -> None:
    # BatchEncoding is a Mapping, not a dict
    if not isinstance(inputs, Mapping) or "input_ids" not in inputs:
        return
    pad_id = getattr(getattr(trainer, "processing_class", None), "pad_token_id", None)
    lengths = [n for n in _sequence_lengths(inputs, pad_id) if n > 0]
    counters["tokens"] += sum(lengths)
    counters["sum_sq_seq_len"] += sum(n * n for n in lengths)
    counters["sequences"] += len(lengths)
    counters["micro_batches"] += 1
    labels = inputs.get("labels")
    if labels is not None:
        counters["label_tokens"] += int((labels != IGNORE_INDEX).sum())
    shapes["last_input_shape"] = list(inputs["input_ids"].shape)


def used_settings(model, args) -> dict:
    """What the trained model really runs, read from the model rather than the trainer's arguments:
    LLaMA-Factory applies Liger and gradient checkpointing to the model itself and leaves
    TrainingArguments' flags off, so the arguments under-report them."""
    modules = list(model.modules()) if model is not None else []
    liger_modules = sorted({type(m).__name__ for m in modules if type(m).__module__.startswith("liger_kernel")})
    # Liger patches a class before the model is built (LLaMA-Factory) or each module's own forward
    # afterwards (transformers' Trainer with use_liger_kernel, which ms-swift uses): look at both
    forwards = set()
    for m in modules:
        for forward in (type(m).forward, m.__dict__.get("forward")):
            forwards.add(getattr(getattr(forward, "__func__", forward), "__module__", "") or "")
    liger_forwards = sorted(name for name in forwards if name.startswith("liger_kernel"))
    checkpointing = any(getattr(m, "gradient_checkpointing", False) is True for m in modules)
    config = getattr(model, "config", None)
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()}) if model is not None else []
    return {
        "gradient_checkpointing": checkpointing,
        "gradient_checkpointing_argument": bool(args.gradient_checkpointing),
        "liger": bool(liger_modules or liger_forwards),
        "liger_modules": liger_modules + liger_forwards,
        "liger_argument": bool(getattr(args, "use_liger_kernel", False)),
        "bf16": bool(args.bf16),
        "parameter_dtypes": dtypes,
        "attn_implementation": getattr(config, "_attn_implementation", None),
    }


def _patch(trainer_module) -> None:
    import torch
    from transformers import TrainerCallback

    trainer_cls = trainer_module.Trainer
    original_step = trainer_cls.training_step
    original_init = trainer_cls.__init__

    # wraps keeps the signatures visible: ms-swift inspects Trainer.__init__ to pick its keyword names
    @functools.wraps(original_step)
    def training_step(self, model, inputs, *args, **kwargs):
        _count(self, inputs)
        return original_step(self, model, inputs, *args, **kwargs)

    class ProbeCallback(TrainerCallback):
        start = None
        step_start = None
        # every optimizer step's seconds, warm-up included: a slow step shows where it is
        step_seconds: list = []

        def on_step_begin(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self.step_start = time.perf_counter()
            if state.global_step == WARMUP_STEPS and self.start is None:
                self.start = (self.step_start, dict(counters))

        def on_step_end(self, args, state, control, model=None, **kwargs):
            torch.cuda.synchronize()
            if self.step_start is not None:
                self.step_seconds.append(round(time.perf_counter() - self.step_start, 4))
            if self.start is None:
                return
            seconds = time.perf_counter() - self.start[0]
            measured = {k: counters[k] - self.start[1][k] for k in counters}
            config = getattr(model, "config", None)
            record = {
                "rank": int(os.environ.get("RANK", "0")),
                "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                "measured_steps": state.global_step - WARMUP_STEPS,
                "warmup_steps": WARMUP_STEPS,
                "seconds": seconds,
                **measured,
                "tokens_per_second": measured["tokens"] / seconds,
                "label_tokens_per_second": measured["label_tokens"] / seconds,
                "peak_memory_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
                "peak_memory_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
                "per_device_train_batch_size": args.per_device_train_batch_size,
                "gradient_accumulation_steps": args.gradient_accumulation_steps,
                **used_settings(model, args),
                "step_seconds": list(self.step_seconds),
                "deepspeed": bool(args.deepspeed),
                **shapes,
            }
            os.makedirs(OUT_DIR, exist_ok=True)
            path = os.path.join(OUT_DIR, f"probe-rank{record['rank']}.json")
            with open(path + ".tmp", "w") as handle:
                json.dump(record, handle, indent=2)
            os.replace(path + ".tmp", path)

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(ProbeCallback())

    trainer_cls.training_step = training_step
    trainer_cls.__init__ = __init__


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "transformers.trainer":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if OUT_DIR:
    sys.meta_path.insert(0, _PatchOnImport())
