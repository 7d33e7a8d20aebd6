"""Backend differences as data: stylewrap's unified training options and each backend's names.

`FLAGS` maps a unified option to, per backend, the key that backend reads in its YAML config
(`llamafactory-cli train x.yaml` and `swift sft x.yaml` both take one). A `Flag` renames a value
(`values`), splits a comma list, or, when one unified value becomes several backend keys (dtype,
method), expands through `expand`. `None` means the backend has no such option: setting it is an
error, never silently dropped. Names were checked against llamafactory 0.9.5 `hparams/*.py` and
ms-swift 4.6.0 `swift/arguments/*.py`; `stylewrap.backends.base.known_keys` re-checks every rendered
key against the installed backend before a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from stylewrap.errors import ConfigError, Location

LLAMAFACTORY = "llamafactory"
SWIFT = "swift"

# the section each option is rendered under, in this order
SECTIONS = ("model", "method", "data", "train", "output", "extra")


@dataclass(frozen=True)
class Flag:
    name: str | None = None
    values: Mapping[Any, Any] = field(default_factory=dict)   # unified value -> backend value
    split: bool = False                                       # "a,b" -> ["a", "b"]
    expand: Mapping[Any, Mapping[str, Any]] | None = None      # unified value -> several backend keys
    fmt: str | None = None                                    # "{}GB": 5 -> "5GB"
    drop: bool = False                                        # the backend needs no key for it

    def translate(self, option: str, value: Any) -> dict[str, Any]:
        if self.drop:
            return {}
        if self.expand is not None:
            if value not in self.expand:
                raise ConfigError(f"unsupported value {value!r}", location=_where(option),
                                  hint=f"one of {sorted(map(str, self.expand))}")
            return dict(self.expand[value])
        if isinstance(value, str) and value in self.values:
            value = self.values[value]
        elif self.split and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if self.fmt is not None:
            value = self.fmt.format(value)
        return {self.name: value}


def _where(option: str) -> Location:
    return Location(field=f"train.{option}")


def same(name: str) -> dict[str, Flag]:
    """An option both backends spell the same way (the Hugging Face TrainingArguments ones)."""
    return {LLAMAFACTORY: Flag(name), SWIFT: Flag(name)}


# unified option -> (section, {backend: Flag | None})
FLAGS: dict[str, tuple[str, dict[str, Flag | None]]] = {
    "model": ("model", {LLAMAFACTORY: Flag("model_name_or_path"), SWIFT: Flag("model")}),
    # ms-swift cannot guess the architecture of a local folder it has no hub id for
    "model_type": ("model", {LLAMAFACTORY: Flag(drop=True), SWIFT: Flag("model_type")}),
    "template": ("model", {LLAMAFACTORY: Flag("template", values={"qwen2_5": "qwen"}), SWIFT: Flag("template")}),
    # both templates inject a default system prompt ("You are a helpful assistant." for qwen)
    "system": ("model", {LLAMAFACTORY: Flag("default_system"), SWIFT: Flag("system")}),
    "dtype": ("model", {
        LLAMAFACTORY: Flag(expand={"auto": {}, "bf16": {"bf16": True}, "fp16": {"fp16": True}, "fp32": {}}),
        SWIFT: Flag(expand={"auto": {}, "bf16": {"torch_dtype": "bfloat16"}, "fp16": {"torch_dtype": "float16"},
                            "fp32": {"torch_dtype": "float32"}}),
    }),
    "attention": ("model", {
        LLAMAFACTORY: Flag(expand={"auto": {}, "sdpa": {"flash_attn": "sdpa"}, "flash_attn": {"flash_attn": "fa2"},
                                   "eager": {"flash_attn": "disabled"}}),
        SWIFT: Flag(expand={"auto": {}, "sdpa": {"attn_impl": "sdpa"}, "flash_attn": {"attn_impl": "flash_attn"},
                            "eager": {"attn_impl": "eager"}}),
    }),
    "method": ("method", {
        LLAMAFACTORY: Flag(expand={"lora": {"finetuning_type": "lora"}, "qlora": {"finetuning_type": "lora",
                                   "quantization_method": "bnb"}, "full": {"finetuning_type": "full"}}),
        SWIFT: Flag(expand={"lora": {"tuner_type": "lora"}, "qlora": {"tuner_type": "lora", "quant_method": "bnb"},
                            "full": {"tuner_type": "full"}}),
    }),
    "quantization_bit": ("method", {LLAMAFACTORY: Flag("quantization_bit"), SWIFT: Flag("quant_bits")}),
    "lora_rank": ("method", same("lora_rank")),
    "lora_alpha": ("method", same("lora_alpha")),
    "lora_dropout": ("method", same("lora_dropout")),
    "lora_target": ("method", {
        LLAMAFACTORY: Flag("lora_target"),
        SWIFT: Flag("target_modules", values={"all": ["all-linear"]}, split=True),
    }),
    "dataset": ("data", same("dataset")),
    "dataset_dir": ("data", {LLAMAFACTORY: Flag("dataset_dir"), SWIFT: None}),
    "custom_dataset_info": ("data", {LLAMAFACTORY: None, SWIFT: Flag("custom_dataset_info")}),
    "eval_dataset": ("data", {LLAMAFACTORY: Flag("eval_dataset"), SWIFT: Flag("val_dataset", split=True)}),
    "val_size": ("data", {LLAMAFACTORY: Flag("val_size"), SWIFT: Flag("split_dataset_ratio")}),
    "cutoff_len": ("data", {LLAMAFACTORY: Flag("cutoff_len"), SWIFT: Flag("max_length")}),
    # plain LLaMA-Factory packing lets packed rows attend to each other; neat packing keeps them apart
    "packing": ("data", {LLAMAFACTORY: Flag(expand={True: {"packing": True, "neat_packing": True}, False: {"packing": False}}),
                         SWIFT: Flag("packing")}),
    "dataloader_num_workers": ("data", same("dataloader_num_workers")),
    "group_by_length": ("data", same("group_by_length")),
    "per_device_train_batch_size": ("train", same("per_device_train_batch_size")),
    "per_device_eval_batch_size": ("train", same("per_device_eval_batch_size")),
    # always written: ms-swift's default is ceil(16 / batch / world_size), not 1
    "gradient_accumulation_steps": ("train", same("gradient_accumulation_steps")),
    "learning_rate": ("train", same("learning_rate")),
    "num_train_epochs": ("train", same("num_train_epochs")),
    "max_steps": ("train", same("max_steps")),
    "lr_scheduler_type": ("train", same("lr_scheduler_type")),
    "warmup_ratio": ("train", same("warmup_ratio")),
    "warmup_steps": ("train", same("warmup_steps")),
    "max_grad_norm": ("train", same("max_grad_norm")),
    "gradient_checkpointing": ("train", {
        LLAMAFACTORY: Flag(expand={True: {"disable_gradient_checkpointing": False},
                                   False: {"disable_gradient_checkpointing": True}}),
        SWIFT: Flag("gradient_checkpointing"),
    }),
    "liger_kernel": ("train", {LLAMAFACTORY: Flag("enable_liger_kernel"), SWIFT: Flag("use_liger_kernel")}),
    "deepspeed": ("train", same("deepspeed")),
    "seed": ("train", same("seed")),
    "eval_strategy": ("train", same("eval_strategy")),
    "eval_steps": ("train", same("eval_steps")),
    "logging_steps": ("output", same("logging_steps")),
    "save_steps": ("output", same("save_steps")),
    "save_total_limit": ("output", same("save_total_limit")),
    "output_dir": ("output", same("output_dir")),
    "resume_from_checkpoint": ("output", same("resume_from_checkpoint")),
}

# A local model folder's config.json `model_type` -> what each backend needs to load it.
MODEL_FAMILIES: dict[str, dict[str, str]] = {
    "qwen2": {"template": "qwen", "swift_model_type": "qwen2"},
    "qwen3": {"template": "qwen3", "swift_model_type": "qwen3"},
    "llama": {"template": "llama3", "swift_model_type": "llama"},
    "mistral": {"template": "mistral", "swift_model_type": "mistral"},
    "glm4": {"template": "glm4", "swift_model_type": "glm4"},
}

# Keys stylewrap always sets, and why.
CONSTANTS: dict[str, dict[str, dict[str, Any]]] = {
    LLAMAFACTORY: {
        "method": {"stage": "sft", "do_train": True},
        "output": {"report_to": "none", "plot_loss": True, "overwrite_output_dir": True},
    },
    SWIFT: {
        # keep every row: ms-swift's default 'delete' drops rows longer than max_length, and a
        # dataset with none left crashes it; llamafactory truncates, so both now behave alike
        "data": {"truncation_strategy": "right"},
        # offline-friendly: check_model looks the model up on the hub; add_version would put the
        # run in output_dir/v0-<timestamp>/ where nothing else expects it
        "output": {"report_to": "none", "check_model": False, "add_version": False},
    },
}

# ms-swift 2.x flag -> ms-swift 4.x flag (None: removed, no replacement). The SWIFT tutorial seed
# (seeds/001) is written in 2.x flags; `seed-classical` is its 4.x rendering.
SWIFT_V2_RENAMES: dict[str, str | None] = {
    "sft_type": "tuner_type",
    "model_type": "model",
    "lora_target_modules": "target_modules",
    "lora_dropout_p": "lora_dropout",
    "batch_size": "per_device_train_batch_size",
    "check_dataset_strategy": None,
    "ckpt_dir": "adapters",
}
SWIFT_V2_VALUES: dict[str, dict[str, Any]] = {
    "lora_target_modules": {"ALL": ["all-linear"], "DEFAULT": None},
    "model_type": {"qwen2-7b-instruct": "Qwen/Qwen2-7B-Instruct"},
    "dataset": {"classical-chinese-translate": "swift/classical_chinese_translate"},
}


def model_flags(backend: str) -> dict[str, Flag | None]:
    """The rows that name the model (shared by the train, export and inference tables)."""
    return {option: FLAGS[option][1][backend] for option in ("model", "model_type", "template")}


def swift_v2_to_v4(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a SWIFT 2.x flag set to ms-swift 4.x names, dropping removed flags."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        new_key = SWIFT_V2_RENAMES.get(key, key)
        if new_key is None:
            continue
        out[new_key] = SWIFT_V2_VALUES.get(key, {}).get(value, value)
    return out


# option -> (other option, the value it must have, why): caught here rather than after the backend
# has loaded the model and refused
REQUIRES: dict[str, dict[str, tuple[str, Any, str]]] = {
    SWIFT: {"packing": ("attention", "flash_attn", "ms-swift packs rows only with flash attention: set "
                        "train.attention=flash_attn, or turn packing off (length-grouped batches are the fallback)")},
}


def translate(backend: str, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Unified options -> {section: {backend key: value}}; None values are left to the backend."""
    for option, (other, needed, why) in REQUIRES.get(backend, {}).items():
        if options.get(option) and options.get(other) != needed:
            raise ConfigError(f"{backend} needs train.{other}={needed} for this", location=_where(option), hint=why)
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for option, value in options.items():
        if value is None:
            continue
        if option not in FLAGS:
            raise ConfigError("not a training option stylewrap knows", location=_where(option))
        section, per_backend = FLAGS[option]
        flag = per_backend.get(backend)
        if flag is None:
            raise ConfigError(f"{backend} has no equivalent option", location=_where(option))
        sections[section].update(flag.translate(option, value))
    for section, constants in CONSTANTS.get(backend, {}).items():
        for key, value in constants.items():
            sections[section].setdefault(key, value)
    return sections
