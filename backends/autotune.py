"""The training settings a user leaves unset, chosen from the hardware, the model and the data.

On a GPU, small padded batches leave it idle (bench/gpu, docs/benchmarks.md "gpu"): stylewrap fills
each step with up to 16k real tokens, keeps activations instead of recomputing them when memory
allows, and uses what the backend's env offers (bf16, SDPA or flash-attn, Liger's fused kernels,
packing where the backend can pack with that attention). Each choice comes with its reason, written
at the top of the rendered config and into run.json. Without a GPU, or with `train.auto: false`,
the unset values stay the backend's defaults (batch 4 x accumulation 4).

Memory model (bytes, bf16 weights and activations), calibrated on one H200 with the Qwen2.5-7B shape,
LoRA r8 on all linear layers, Liger on: 102.1 GiB at 16 packed rows of 1,024 tokens and 58 GiB at 8,
i.e. 14 GiB of weights plus 5.5 GiB per 1k tokens, against 5.6 computed below.
  one decoder layer keeps 2 (8 h + 4 i) per token for its backward (norms, q/k/v/o inputs and outputs,
  attention output, the MLP's gate, up and activation); gradient checkpointing keeps only each
  layer's input (2 h) plus one layer recomputed at a time; LoRA dropout > 0 adds a dropped copy of
  every adapted input (about 2 (6 h + i)); without Liger the loss materialises the logits (bf16 and
  fp32 copies and their gradient, about 16 x vocab).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from stylewrap.backends.modelinfo import ModelShape, model_folder
from stylewrap.config import TrainConfig

if TYPE_CHECKING:
    from stylewrap.backends.base import TableBackend

GIB = 1 << 30
# beyond ~16k tokens a micro-batch, a 7B LoRA step gains little (12.2k tok/s at 8k tokens, 13.3k at
# 16k on an H200) while each epoch gets fewer optimizer steps; about as many tokens per optimizer
# step keeps small GPUs (batch 1-2) from taking noisy steps
TOKENS_PER_MICRO_BATCH = 16384
TOKENS_PER_OPTIMIZER_STEP = 16384
# what the allocator, the CUDA context and NCCL buffers take beyond the model and activations
RESERVED_FRACTION = 0.1
RESERVED_GIB = 1.0
# Liger patches these families' modules (liger_kernel.transformers.monkey_patch)
LIGER_FAMILIES = {"qwen2", "qwen3", "llama", "mistral", "glm4", "gemma", "gemma2", "phi3", "mixtral"}
# the backend env's distributions that make a setting available
FLASH_ATTN = "flash-attn"
# torch.nn.attention.varlen (the kernel behind `attention: varlen`) appeared in torch 2.10
VARLEN_TORCH = (2, 10)
LIGER = "liger-kernel"
# a chat template's tokens around each message (ChatML: <|im_start|>role\n ... <|im_end|>\n) and a
# default system prompt (qwen's is ~20 tokens): added to each row's content tokens
TOKENS_PER_MESSAGE = 5
TOKENS_PER_ROW = 32
CPU_BATCH = 4
CPU_ACCUMULATION = 4
GPU_DATALOADER_WORKERS = 4


@dataclass(frozen=True)
class Gpu:
    name: str
    free_gib: float
    bf16: bool
    index: str | None = None      # nvidia-smi's, for CUDA_VISIBLE_DEVICES


@dataclass(frozen=True)
class Hardware:
    gpus: tuple[Gpu, ...] = ()
    source: str = "nvidia-smi"

    @property
    def free_gib(self) -> float:
        return min(gpu.free_gib for gpu in self.gpus)

    def describe(self) -> str:
        if not self.gpus:
            return "no GPU"
        names = {gpu.name for gpu in self.gpus}
        return f"{len(self.gpus)} x {'/'.join(sorted(names))}, {self.free_gib:.1f} GiB free each ({self.source})"


def detect_hardware(train: TrainConfig) -> Hardware:
    """`train.gpu_memory_gib` when set (0: plan for the CPU), else what nvidia-smi reports."""
    if train.gpu_memory_gib is not None:
        if train.gpu_memory_gib == 0:
            return Hardware(source="train.gpu_memory_gib=0")
        return Hardware((Gpu("GPU", train.gpu_memory_gib, True),), source="train.gpu_memory_gib")
    return query_nvidia_smi()


def query_nvidia_smi() -> Hardware:
    """The GPUs this process may use: nvidia-smi lists them all, CUDA_VISIBLE_DEVICES narrows them
    (by index or UUID; set but empty means none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return Hardware(source="CUDA_VISIBLE_DEVICES is empty")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Hardware()
    try:
        proc = subprocess.run([smi, "--query-gpu=index,uuid,name,memory.free,compute_cap",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return Hardware()
    if proc.returncode != 0:
        return Hardware()
    wanted = {part.strip() for part in visible.split(",")} if visible is not None else None
    gpus = []
    for line in proc.stdout.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 5 or (wanted is not None and not wanted & {parts[0], parts[1]}):
            continue
        try:
            gpus.append(Gpu(name=parts[2], free_gib=float(parts[3]) / 1024, bf16=float(parts[4]) >= 8.0,
                            index=parts[0]))
        except ValueError:
            continue
    return Hardware(tuple(gpus))


@dataclass
class Tuning:
    """The settings stylewrap chose (only for options the user left unset) and why."""

    values: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    hardware: str | None = None
    reasons: list[str] = field(default_factory=list)

    def choose(self, option: str, value: Any, why: str) -> None:
        self.values[option] = value
        self.reasons.append(f"{option}: {_shown(value)} ({why})")

    @property
    def notes(self) -> list[str]:
        """What a person reads at the top of the rendered config."""
        if not self.reasons:
            return []
        return [f"stylewrap chose these for {self.hardware}:", *(f"  {reason}" for reason in self.reasons)]


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class MemoryPlan:
    checkpointing: bool
    tokens_fitting: int      # tokens one micro-batch may hold
    static_gib: float
    per_token_mib: float


def activation_bytes_per_token(shape: ModelShape, *, checkpointing: bool, liger: bool, lora_dropout: float,
                               lora: bool) -> float:
    layer = 2 * (8 * shape.hidden + 4 * shape.intermediate)
    per_token = shape.layers * 2 * shape.hidden + layer if checkpointing else shape.layers * layer
    if lora and lora_dropout > 0:
        per_token += shape.layers * 2 * (6 * shape.hidden + shape.intermediate)
    if not liger:
        per_token += 16 * shape.vocab
    return per_token


def static_bytes(shape: ModelShape, method: str, quantization_bit: int | None, deepspeed: str | None,
                 world: int) -> float:
    """Weights, and for a full fine-tune its gradients and Adam states (sharded by ZeRO)."""
    if method == "qlora":
        return shape.params * (quantization_bit or 4) / 8 * 1.1
    if method == "lora":
        return shape.params * 2
    weights, grads, optimizer = 2.0, 2.0, 12.0
    stage = deepspeed or ""
    if "offload" in stage:
        optimizer = 0.0
    if stage.startswith(("zero2", "zero3")):
        grads, optimizer = grads / world, optimizer / world
    if stage.startswith("zero3"):
        weights /= world
    return shape.params * (weights + grads + optimizer)


def plan_memory(shape: ModelShape, free_gib: float, train: TrainConfig, liger: bool, world: int,
                row_tokens: int) -> MemoryPlan:
    """The largest micro-batch that fits, without gradient checkpointing when one row fits without it."""
    usable = free_gib * GIB * (1 - RESERVED_FRACTION) - RESERVED_GIB * GIB
    static = static_bytes(shape, train.method, train.quantization_bit, train.deepspeed, world)
    choices = [train.gradient_checkpointing] if train.gradient_checkpointing is not None else [False, True]
    plan = None
    for checkpointing in choices:
        per_token = activation_bytes_per_token(shape, checkpointing=checkpointing, liger=liger,
                                               lora_dropout=train.lora_dropout, lora=train.method != "full")
        plan = MemoryPlan(checkpointing, max(0, int((usable - static) / per_token)), static / GIB, per_token / 2**20)
        if plan.tokens_fitting >= row_tokens:
            break
    return plan


def tune(train: TrainConfig, *, hardware: Hardware, shape: ModelShape | None,
         installed: dict[str, str] | Iterable[str],
         backend: TableBackend, processes_per_node: int, nodes: int, row_tokens: Callable[[], int],
         deepspeed: bool = False) -> Tuning:
    """Choose every unset speed setting. `row_tokens()` (the longest row) is asked only when rows
    are not packed: a packed row is cutoff_len long."""
    world = processes_per_node * nodes
    tuning = Tuning()
    hardware = _pin_gpus(tuning, hardware, processes_per_node)
    tuning.hardware = hardware.describe()
    if not hardware.gpus and world > 1 and not deepspeed:
        # without it accelerate >= 1.12 (ms-swift's env) sees no distributed run on CPUs: each process
        # trains a whole copy alone, on every row (transformers passes cpu=True only for use_cpu).
        # Not with DeepSpeed: transformers would then take its CPU branch and silently leave ZeRO out;
        # DeepSpeed picks its own CPU accelerator and runs distributed by itself
        tuning.env["ACCELERATE_USE_CPU"] = "true"
        tuning.reasons.append(f"ACCELERATE_USE_CPU=true ({world} processes and no GPU: DDP over gloo on the CPUs)")
    if not hardware.gpus or not train.auto:
        if train.per_device_train_batch_size is None:
            tuning.values["per_device_train_batch_size"] = CPU_BATCH
        if train.gradient_accumulation_steps is None:
            tuning.values["gradient_accumulation_steps"] = CPU_ACCUMULATION
        return tuning
    installed = installed if isinstance(installed, dict) else dict.fromkeys(installed, "")
    if train.dtype == "auto":
        bf16 = all(gpu.bf16 for gpu in hardware.gpus)
        tuning.choose("dtype", "bf16" if bf16 else "fp16", "the GPU computes in bf16" if bf16 else "no bf16 on this GPU")
    attention = train.attention
    if attention == "auto":
        attention, why = _choose_attention(backend, installed)
        tuning.choose("attention", attention, why)
    liger = train.liger_kernel
    family = shape.family if shape else None
    if liger is None:
        liger = LIGER in installed and family in LIGER_FAMILIES
        why = (f"{LIGER} is installed and patches {family}" if liger else
               f"{LIGER} is not installed in the {backend.name} env" if LIGER not in installed else
               f"{LIGER} does not patch this model family ({family or 'unknown'})")
        tuning.choose("liger_kernel", liger, why)
    packing = train.packing
    if packing is None:
        needs = backend.tables["train"].requires.get("packing")
        packing = needs is None or {"attention": attention}.get(needs[0]) in needs[1]
        tuning.choose("packing", packing, "rows are packed into cutoff_len-long sequences that never attend to "
                      "each other" if packing else
                      f"{backend.name} packs only with {needs[0]}={' or '.join(map(str, needs[1]))}")
    if not packing and train.group_by_length is None:
        tuning.choose("group_by_length", True, "batches of rows of similar length waste little on padding")
    if train.dataloader_num_workers is None:
        tuning.choose("dataloader_num_workers", GPU_DATALOADER_WORKERS, "collation off the training loop")
    tokens = train.cutoff_len if packing else min(train.cutoff_len, row_tokens())
    _choose_batch(tuning, train, shape, hardware, liger, world, tokens, packing)
    return tuning


def _choose_attention(backend: TableBackend, installed: dict[str, str]) -> tuple[str, str]:
    """flash-attn where the env has it; else PyTorch's own varlen FlashAttention kernel where the
    backend's unit offers it (an `attention: varlen` row) and the env's torch is not known to be older
    than 2.10 (torch reached outside the env is not listed: the plugin then checks at run time and
    falls back to SDPA with its reason); else SDPA."""
    if FLASH_ATTN in installed:
        return "flash_attn", f"{FLASH_ATTN} is installed"
    offers_varlen = "varlen" in (backend.tables["train"].flags["attention"].expand or {})
    torch_version = installed.get("torch")
    if offers_varlen and not (torch_version and _older(torch_version, VARLEN_TORCH)):
        return "varlen", (f"{FLASH_ATTN} is not installed in the {backend.name} env; PyTorch's own varlen "
                          "FlashAttention kernel keeps packed rows apart at flash speed")
    return "sdpa", f"{FLASH_ATTN} is not installed in the {backend.name} env"


def _older(version: str, than: tuple[int, int]) -> bool:
    try:
        return tuple(int(part) for part in version.split("+")[0].split(".")[:2]) < than
    except ValueError:
        return False


def _pin_gpus(tuning: Tuning, hardware: Hardware, processes: int) -> Hardware:
    """One process per GPU and no more GPUs than processes: with more visible, LLaMA-Factory's
    launcher starts torchrun over all of them by itself, and a single ms-swift process spreads the
    model over them with device_map (naive model parallelism, which Liger and DDP refuse).
    Returns the GPUs the run will use."""
    indices = [gpu.index for gpu in hardware.gpus if gpu.index is not None]
    if len(indices) <= processes:
        return hardware
    pinned = ",".join(indices[:processes])
    tuning.env["CUDA_VISIBLE_DEVICES"] = pinned
    tuning.reasons.append(f"CUDA_VISIBLE_DEVICES={pinned} ({len(indices)} GPUs visible, {processes} "
                          f"process{'es' if processes > 1 else ''} per node: one GPU each)")
    return Hardware(hardware.gpus[:processes], hardware.source)


def _choose_batch(tuning: Tuning, train: TrainConfig, shape: ModelShape | None, hardware: Hardware, liger: bool,
                  world: int, row_tokens: int, packing: bool) -> None:
    """The micro-batch from free memory, then the split of one optimizer step's rows over the
    processes and accumulation steps (`split_global_batch`)."""
    rows = "packed rows" if packing else f"rows of up to {row_tokens} tokens"
    fixed = train.per_device_train_batch_size
    if shape is None:
        if fixed is None:
            tuning.choose("per_device_train_batch_size", CPU_BATCH, "model size unknown: its config.json is not on "
                          "disk; point train.model at the folder to plan from memory")
        if train.gradient_checkpointing is None:
            tuning.choose("gradient_checkpointing", True, "model size unknown")
        _choose_accumulation(tuning, train, [fixed or CPU_BATCH], world, row_tokens)
        return
    memory = plan_memory(shape, hardware.free_gib, train, liger, world, row_tokens)
    fits = memory.tokens_fitting // row_tokens
    if train.gradient_checkpointing is None:
        tuning.choose("gradient_checkpointing", memory.checkpointing,
                      f"{'needed' if memory.checkpointing else 'not needed'}: {shape.params / 1e9:.2f}B parameters "
                      f"take {memory.static_gib:.1f} GiB, activations {memory.per_token_mib:.2f} MiB a token")
    if fixed is not None:
        _choose_accumulation(tuning, train, [fixed], world, row_tokens)
        return
    cap = max(1, TOKENS_PER_MICRO_BATCH // row_tokens)
    largest = max(1, min(fits, cap))
    batch, steps = split_global_batch(range(largest, 0, -1), train.gradient_accumulation_steps, world, row_tokens)
    if not fits:
        why = (f"not even one row of {row_tokens} tokens fits: expect out-of-memory; shorten cutoff_len, "
               "use qlora, or shard over GPUs with --deepspeed zero3")
    elif batch < largest:
        why = (f"{rows}: {batch * row_tokens} tokens, fewer than the {largest} rows that could, so that one "
               f"optimizer step over {world} processes keeps its planned size")
    elif cap < fits:
        why = f"{rows}: {batch * row_tokens} tokens, the {TOKENS_PER_MICRO_BATCH}-token cap ({memory.tokens_fitting} would fit)"
    else:
        why = f"{rows}: {batch * row_tokens} tokens, as many as fit"
    tuning.choose("per_device_train_batch_size", batch, why)
    _choose_accumulation(tuning, train, [batch], world, row_tokens)


def split_global_batch(batches: Iterable[int], accumulation: int | None, world: int,
                       row_tokens: int) -> tuple[int, int]:
    """(micro-batch, accumulation steps) whose product with the processes is one optimizer step of
    TOKENS_PER_OPTIMIZER_STEP / row_tokens rows on any number of GPUs, so that training dynamics do
    not change with the GPU count; exact where some split is, else the nearest; among those the fewest
    accumulation steps (the largest micro-batch offered)."""
    target = global_batch_rows(row_tokens)
    accumulations = [accumulation] if accumulation is not None else range(1, target + 1)
    return min(((b, a) for b in batches for a in accumulations),
               key=lambda pair: (abs(pair[0] * pair[1] * world - target), pair[1], -pair[0]))


def global_batch_rows(row_tokens: int) -> int:
    return max(1, TOKENS_PER_OPTIMIZER_STEP // row_tokens)


def _choose_accumulation(tuning: Tuning, train: TrainConfig, batches: list[int], world: int, row_tokens: int) -> None:
    """Accumulation for the global batch, and where no split is exact (16 rows over 3 GPUs) the learning
    rate scaled by the ratio (linear scaling), said in the reasons: the configured learning rate is
    the rate for the planned global batch."""
    target = global_batch_rows(row_tokens)
    batch, steps = split_global_batch(batches, train.gradient_accumulation_steps, world, row_tokens)
    global_rows = batch * steps * world
    if train.gradient_accumulation_steps is None:
        tuning.choose("gradient_accumulation_steps", steps,
                      f"{batch} x {steps} x {world} process(es) = {global_rows} rows of {row_tokens} tokens an "
                      f"optimizer step, planned {target} (about {TOKENS_PER_OPTIMIZER_STEP} tokens)")
    user_set_both = train.per_device_train_batch_size is not None and train.gradient_accumulation_steps is not None
    if global_rows != target and not user_set_both:
        rate = float(f"{train.learning_rate * global_rows / target:.6g}")
        tuning.choose("learning_rate", rate,
                      f"{train.learning_rate:g} x {global_rows}/{target}: one optimizer step is {global_rows} rows over "
                      f"{world} process(es), not the planned {target} (linear scaling)")


def longest_row_tokens(path: Path, fmt: str | None, model: str) -> int:
    """Tokens of the longest row, with the model's tokenizer when it and `tokenizers` are at hand,
    else its UTF-8 bytes (a byte-level BPE token is at least one byte: never an underestimate)."""
    from stylewrap.adapters import detect_format, read_records

    count = _token_counter(model)
    longest = 0
    for record in read_records(path, fmt or detect_format(path)):
        texts = [str(message.get("content") or "") for message in record.messages]
        longest = max(longest, sum(count(texts)) + TOKENS_PER_MESSAGE * len(texts) + TOKENS_PER_ROW)
    return max(longest, 1)


def _token_counter(model: str) -> Callable[[list[str]], list[int]]:
    from stylewrap.adapters.stats import load_token_counter
    from stylewrap.errors import InputError

    folder = model_folder(model)
    if folder is not None and (folder / "tokenizer.json").is_file():
        try:
            return load_token_counter(folder)
        except InputError:   # no `tokenizers` package here, or a file it cannot read
            pass
    return lambda texts: [len(text.encode("utf-8")) for text in texts]
