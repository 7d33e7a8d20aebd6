"""The one shape of a backend's option table, and the one translation every step uses.

stylewrap speaks one set of option names per step (`STEP_OPTIONS`: train, export, infer); each
backend unit holds, per step, a `StepTable`: its column of `Flag`s (the key that backend reads in
its YAML config for each unified option), the keys it always sets and the options that need
another. A `Flag` renames a value (`values`), splits a comma list, or, when one unified value
becomes several backend keys (dtype, method), expands through `expand`. An option missing from
a column, or mapped to None, has no equivalent in that backend: setting it is an error, never
silently dropped. `stylewrap.backends.base.known_keys` re-checks every rendered key against the
installed backend before a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from stylewrap.errors import ConfigError, Location

# unified option -> the section of the rendered YAML it goes under; per step, in rendering order
TRAIN_SECTIONS = ("model", "method", "data", "train", "output", "extra")
_TRAIN_OPTIONS = {
    "model": ("model", "model_type", "template", "system", "dtype", "attention"),
    "method": ("method", "quantization_bit", "lora_rank", "lora_alpha", "lora_dropout", "lora_target"),
    "data": ("dataset", "dataset_dir", "custom_dataset_info", "eval_dataset", "val_size", "cutoff_len", "overlength", "packing",
             "dataloader_num_workers", "group_by_length", "loss_on", "model_name", "model_author"),
    "train": ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
              "learning_rate", "num_train_epochs", "max_steps", "lr_scheduler_type", "warmup_ratio", "warmup_steps",
              "max_grad_norm", "gradient_checkpointing", "liger_kernel", "deepspeed", "seed", "eval_strategy",
              "eval_steps"),
    "output": ("logging_steps", "save_steps", "save_total_limit", "output_dir", "resume_from_checkpoint", "report_to"),
}
STEP_OPTIONS: dict[str, dict[str, str]] = {
    "train": {option: section for section, options in _TRAIN_OPTIONS.items() for option in options},
    "export": {option: "export" for option in ("model", "model_type", "template", "adapter", "output_dir",
                                               "max_shard_size_gb", "quantization_bit", "calibration_data")},
    "infer": {option: "infer" for option in ("model", "model_type", "template", "adapter", "probes_file",
                                             "result_file", "max_new_tokens")},
}
# preference tuning is training with these besides: the objective, its hyperparameters, and the
# weights it starts from and compares against (`backends/preference.py` fills them)
PREFERENCE_OPTIONS = ("objective", "beta", "loss_type", "sft_weight", "simpo_gamma", "adapter", "ref_model", "ref_adapter")
STEP_OPTIONS["preference"] = {**STEP_OPTIONS["train"], **{option: "method" for option in PREFERENCE_OPTIONS}}
STEP_SECTIONS = {"train": TRAIN_SECTIONS, "preference": TRAIN_SECTIONS, "export": ("export",), "infer": ("infer",)}

# experiment trackers `train.report_to` accepts; each unit maps every one (or refuses it)
TRACKERS = ("none", "tensorboard", "swanlab", "wandb", "mlflow")
# where a tracker writes its local logs, relative to the run directory (linked from run.json)
TRACKER_LOGS = {"tensorboard": "output/runs", "swanlab": "swanlog", "wandb": "wandb", "mlflow": "mlruns"}
# the environment that keeps a tracker on this machine: wandb offline, MLflow's file store in the run
# ({run_dir}); swanlab's local mode is a backend key (each unit's report_to row)
TRACKER_ENV = {"wandb": {"WANDB_MODE": "offline", "WANDB_DIR": "{run_dir}"},
               "mlflow": {"MLFLOW_TRACKING_URI": "{run_dir}/mlruns"}}
# the distributions that provide a tracker's module (MLflow's client alone is mlflow-skinny)
TRACKER_PACKAGES = {"tensorboard": ("tensorboard",), "swanlab": ("swanlab",), "wandb": ("wandb",),
                    "mlflow": ("mlflow", "mlflow-skinny")}
# what shows a tracker's local logs: {logs} is the folder
TRACKER_VIEWERS = {"tensorboard": "tensorboard --logdir {logs}", "swanlab": "swanlab watch {logs}",
                   "wandb": "wandb sync {logs}/offline-run-* (uploads: only when you choose)",
                   "mlflow": "mlflow ui --backend-store-uri {logs}"}

# Hugging Face TrainingArguments, read under these names by any backend built on the HF Trainer (both built-ins)
TRAINER_ARGUMENTS = (
    "dataloader_num_workers", "group_by_length", "per_device_train_batch_size", "per_device_eval_batch_size",
    # always written: ms-swift's default is ceil(16 / batch / world_size), not 1
    "gradient_accumulation_steps", "learning_rate", "num_train_epochs", "max_steps", "lr_scheduler_type",
    "warmup_ratio", "warmup_steps", "max_grad_norm", "deepspeed", "seed", "eval_strategy", "eval_steps",
    "logging_steps", "save_steps", "save_total_limit", "output_dir", "resume_from_checkpoint",
)


@dataclass(frozen=True)
class Flag:
    name: str | None = None
    values: Mapping[Any, Any] = field(default_factory=dict)   # unified value -> backend value
    split: bool = False                                       # "a,b" -> ["a", "b"]
    expand: Mapping[Any, Mapping[str, Any]] | None = None      # unified value -> several backend keys
    fmt: str | None = None                                    # "{}GB": 5 -> "5GB"
    drop: bool = False                                        # the backend needs no key for it

    def translate(self, value: Any, where: Location) -> dict[str, Any]:
        if self.drop:
            return {}
        if self.expand is not None:
            if value not in self.expand:
                raise ConfigError(f"unsupported value {value!r}", location=where,
                                  hint=f"one of {sorted(map(str, self.expand))}")
            return dict(self.expand[value])
        if isinstance(value, str) and value in self.values:
            value = self.values[value]
        elif self.split and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if self.fmt is not None:
            value = self.fmt.format(value)
        return {self.name: value}


def same(*names: str) -> dict[str, Flag]:
    """Options the backend spells as stylewrap does."""
    return {name: Flag(name) for name in names}


@dataclass(frozen=True)
class StepTable:
    """One backend's column for one step."""

    flags: Mapping[str, Flag | None]
    # section -> keys stylewrap always sets (the backend's own key names), unless an option set them
    constants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # option -> (other option, the values it may have, why): caught here rather than after the
    # backend has loaded the model and refused
    requires: Mapping[str, tuple[str, tuple[Any, ...], str]] = field(default_factory=dict)


def translate(backend: str, step: str, table: StepTable, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Unified options of `step` -> {section: {backend key: value}}; None values are left to the backend."""
    known = STEP_OPTIONS[step]
    for option, (other, allowed, why) in table.requires.items():
        if options.get(option) and options.get(other) not in allowed:
            raise ConfigError(f"{backend} needs {step}.{other}={' or '.join(map(str, allowed))} for this",
                              location=Location(field=f"{step}.{option}"), hint=why)
    sections: dict[str, dict[str, Any]] = {name: {} for name in STEP_SECTIONS[step]}
    for option, value in options.items():
        if value is None:
            continue
        where = Location(field=f"{step}.{option}")
        if option not in known:
            raise ConfigError(f"not an option stylewrap's {step} step knows", location=where)
        flag = table.flags.get(option)
        if flag is None:
            raise ConfigError(f"{backend} has no equivalent option", location=where)
        sections[known[option]].update(flag.translate(value, where))
    for section, constants in table.constants.items():
        for key, value in constants.items():
            sections[section].setdefault(key, value)
    return sections


def unknown_options(tables: Mapping[str, StepTable]) -> list[str]:
    """`step.option` names a backend's tables map that stylewrap does not have (typos in a column)."""
    return [f"{step}.{option}" for step, table in tables.items() for option in table.flags
            if option not in STEP_OPTIONS.get(step, {})]
