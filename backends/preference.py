"""Preference tuning (`train --method dpo|orpo|kto|simpo`): what a run needs besides SFT's options.

- the objective and its hyperparameters (config `train.preference`), in stylewrap's option names;
  each backend unit's `preference` StepTable turns them into its keys (LLaMA-Factory `stage` +
  `pref_loss`, ms-swift `swift rlhf --rlhf_type`);
- where training starts (`--from-run RUN`: the SFT run's adapter trains on, or its full weights
  are the model) and what the reference model is: from an SFT run, that SFT model (on both
  backends); from the base with LoRA, the base (the policy with its adapter disabled);
- the run's data: the pairs file in the backend's preference format, or for KTO the unpaired rows
  derived from it (chosen -> desirable, rejected -> undesirable);
- the reward numbers the backend logged (HF Trainer's `rewards/*`, in trainer_state.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from stylewrap.backends.base import OUTPUT_DIR, TableBackend
from stylewrap.config import StylewrapConfig
from stylewrap.errors import ConfigError, DataError, InputError, Location
from stylewrap.rundir import RunInfo

STEP = "preference"
# the rows each objective learns from (a key of a unit's `preference_formats`)
ROW_KIND = {"dpo": "pairs", "orpo": "pairs", "simpo": "pairs", "kto": "unpaired"}
# the objectives that compare the policy with a frozen reference model (ORPO and SimPO do not)
NEEDS_REFERENCE = frozenset(("dpo", "kto"))
# one default for both backends (LLaMA-Factory uses 0.1 for all, ms-swift 2.0 for simpo as the paper)
DEFAULT_BETA = {"simpo": 2.0}
REWARD_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


@dataclass(frozen=True)
class StartingPoint:
    """The weights a preference run starts from: the base, or an SFT run's adapter / full weights."""

    model: str
    adapter: str | None = None
    run_dir: Path | None = None


def starting_point(config: StylewrapConfig, base_model: str) -> StartingPoint:
    from_run = config.train.preference.from_run
    if not from_run:
        return StartingPoint(base_model)
    run_dir = config.resolve_path(from_run)
    field = "train.preference.from_run"
    if run_dir is None or not (run_dir / "run.json").is_file():
        raise InputError("not a stylewrap run directory (no run.json)", location=Location(from_run, field=field))
    info = RunInfo.load(run_dir)
    if info.status != "succeeded" or not info.adapter_dir:
        raise InputError(f"the run did not finish (status {info.status}): no weights to start from",
                         location=Location(run_dir / "run.json", field="status"))
    weights = (run_dir / info.adapter_dir).resolve()
    if (weights / "adapter_config.json").is_file():
        if config.train.method == "full":
            raise ConfigError("the SFT run trained a LoRA adapter; a full fine-tune cannot continue it",
                              location=Location(field="train.method"), hint="use train.method=lora")
        return StartingPoint(info.base_model, str(weights), run_dir.resolve())
    return StartingPoint(str(weights), None, run_dir.resolve())


def check_settings(config: StylewrapConfig) -> None:
    """Settings that belong to one objective, refused on another rather than silently unused."""
    pref = config.train.preference
    if pref.loss_type != "sigmoid" and pref.method != "dpo":
        raise ConfigError(f"loss_type {pref.loss_type!r} is a DPO loss, not {pref.method}",
                          location=Location(field="train.preference.loss_type"))
    if pref.sft_weight and pref.method != "dpo":
        raise ConfigError(f"sft_weight is DPO's SFT term; {pref.method} has its own or none",
                          location=Location(field="train.preference.sft_weight"))


def options(config: StylewrapConfig, start: StartingPoint) -> dict[str, Any]:
    """The preference options in stylewrap's names (the unit's table translates them)."""
    pref = config.train.preference
    method = pref.method
    check_settings(config)
    reference = start.adapter if method in NEEDS_REFERENCE else None
    return {
        "objective": method,
        "beta": pref.beta if pref.beta is not None else DEFAULT_BETA.get(method, 0.1),
        "loss_type": pref.loss_type if method == "dpo" else None,
        "sft_weight": (pref.sft_weight or None) if method == "dpo" else None,
        "simpo_gamma": pref.simpo_gamma if method == "simpo" else None,
        "adapter": start.adapter,
        # the SFT model as reference: its base with its adapter (LLaMA-Factory needs both named)
        "ref_model": start.model if reference else None,
        "ref_adapter": reference,
    }


def notes(config: StylewrapConfig, start: StartingPoint) -> list[str]:
    method = config.train.preference.method
    where = f"from run {start.run_dir}" if start.run_dir else "from the base model"
    if method not in NEEDS_REFERENCE:
        reference = "no reference model"
    elif start.adapter:
        reference = "reference: the SFT run's model"
    else:
        reference = "reference: the base model"
    return [f"Preference tuning ({method}) on chosen/rejected pairs, {where}; {reference}."]


def pairs_source(config: StylewrapConfig) -> Path:
    path = config.resolve_path(config.data.pairs_file)
    if path is None:
        raise ConfigError("no preference pairs", location=Location(field="data.pairs_file"),
                          hint="set data.pairs_file (datagen's pairs.jsonl, or `stylewrap data pairs`)")
    if not path.is_file():
        raise InputError("pairs file not found", location=Location(path, field="data.pairs_file"))
    return path


def _pairs(path: Path, fmt: str | None) -> Iterator:
    from stylewrap.adapters import read_records
    from stylewrap.adapters.preference import REJECTED, is_pair

    for record in read_records(path, fmt):
        if not is_pair(record):
            raise DataError("not a preference pair (no rejected answer)", location=Location(path, record.line),
                            hint="pairs rows hold question/chosen/rejected: see `stylewrap data pairs`")
        # only the answer columns travel: ms-swift and LLaMA-Factory read nothing else from a pair
        record.meta = {REJECTED: record.meta[REJECTED]}
        yield record


def write_dataset(backend: TableBackend, config: StylewrapConfig, data_dir: Path, name: str) -> dict[str, Any]:
    """The pairs (or KTO's unpaired rows) in the backend's format under `data_dir`, registered as `name`."""
    from stylewrap.adapters import write_records
    from stylewrap.adapters.preference import unpaired

    source = pairs_source(config)
    kind = ROW_KIND[config.train.preference.method]
    fmt = backend.preference_formats[kind]
    counted = {"pairs": 0}

    def counting():
        for record in _pairs(source, config.data.format):
            counted["pairs"] += 1
            yield record

    rows = counting() if kind == "pairs" else unpaired(counting())
    path = data_dir / f"{name}{backend.data_suffix}"
    written = write_records(rows, path, fmt)
    if written == 0:
        raise DataError("the pairs file has no rows", location=Location(source))
    backend.write_registration(data_dir, name, path, fmt)
    return {"name": name, "path": str(source), "source": str(source), "format": "pairs", "pairs": counted["pairs"],
            "rows": written, "backend_format": fmt, "registration": f"{data_dir.name}/"}


def run_record(options: dict[str, Any], config: StylewrapConfig) -> dict[str, Any]:
    """run.json's note of a preference run: the objective, its settings, the run it started from."""
    keys = ("objective", "beta", "loss_type", "sft_weight", "simpo_gamma", "adapter", "ref_adapter")
    return {**{k: options[k] for k in keys if options.get(k) is not None}, "from_run": config.train.preference.from_run}


def reward_metrics(run_dir: Path) -> dict[str, float]:
    """The first and last logged value of each `rewards/*` number, from the newest trainer_state.json
    under output/ (both backends train with the HF Trainer, which writes its log history there)."""
    states = sorted((run_dir / OUTPUT_DIR).rglob("trainer_state.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return {}
    history = json.loads(states[-1].read_text(encoding="utf-8")).get("log_history", [])
    out: dict[str, float] = {}
    for key in REWARD_KEYS:
        # KTO logs the chosen side's numbers only for batches holding desirable rows (and so on)
        values = [entry[key] for entry in history if isinstance(entry.get(key), (int, float))]
        if values:
            out[f"first_{key.replace('/', '_')}"] = values[0]
            out[f"final_{key.replace('/', '_')}"] = values[-1]
    return out
