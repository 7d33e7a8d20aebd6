"""`stylewrap datagen` from its flags: each flag an override of one config key, the job built,
and the exit status read from the manifest the run leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# flag -> config key; each flag is an override on top of stylewrap.yaml (and --set)
FLAG_KEYS = {
    "style": "style.preset",
    "model": "datagen.teacher_model",
    "base_url": "datagen.base_url",
    "api_key_env": "datagen.api_key_env",
    "num_topics": "datagen.num_topics",
    "num_dialogues": "datagen.num_dialogues",
    "turns": "datagen.turns",
    "temperature": "datagen.temperature",
    "max_tokens": "datagen.max_tokens",
    "concurrency": "datagen.concurrency",
    "rpm": "datagen.requests_per_minute",
    "tpm": "datagen.tokens_per_minute",
    "price_in": "datagen.price_input_per_1k",
    "price_out": "datagen.price_output_per_1k",
    "timeout": "datagen.request_timeout",
    "max_retries": "datagen.max_retries",
    "max_attempts": "datagen.max_attempts",
    "dedup_attempts": "datagen.dedup_attempts",
    "json_mode": "datagen.json_mode",
    "seed": "datagen.seed",
    "output": "datagen.output_dir",
    "fmt": "datagen.output_format",
    "train_file": "datagen.train_file",
    "distinct_questions": "datagen.distinct_questions",
}


def flag_overrides(flags: dict[str, Any]) -> list[str]:
    """`--set`-style overrides for the flags given (None: not given)."""
    # JSON-quoted, so a model named "on" or "1e5" stays the string it is (the value is read as YAML)
    return [f"{FLAG_KEYS[name]}={json.dumps(value)}" for name, value in flags.items() if value is not None]


def run_with_flags(stages: tuple[str, ...], config_path: Path | None, overrides: tuple[str, ...], flags: dict[str, Any],
                   **job) -> dict:
    """Load the config (a named flag beats --set), run the stages; the run's manifest."""
    from stylewrap.config import load_config
    from stylewrap.datagen.pipeline import DatagenJob, run_datagen

    config = load_config(config_path, [*overrides, *flag_overrides(flags)])
    return run_datagen(config, DatagenJob(stages=stages, **job))


def exit_status(manifest: dict) -> int:
    """0 when every requested item is finished or finally rejected; 1 when a rerun has work left."""
    return 0 if manifest["complete"] else 1
