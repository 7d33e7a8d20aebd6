"""ms-swift 2.x flags -> ms-swift 4.x flags, for checking that the SWIFT tutorial seed (seeds/001,
written in 2.x flags) renders as the `seed-classical` training preset. Test-only: stylewrap itself
never reads 2.x flags."""

from __future__ import annotations

from typing import Any, Mapping

# 2.x flag -> 4.x flag (None: removed, no replacement)
RENAMES: dict[str, str | None] = {
    "sft_type": "tuner_type",
    "model_type": "model",
    "lora_target_modules": "target_modules",
    "lora_dropout_p": "lora_dropout",
    "batch_size": "per_device_train_batch_size",
    "check_dataset_strategy": None,
    "ckpt_dir": "adapters",
}
VALUES: dict[str, dict[str, Any]] = {
    "lora_target_modules": {"ALL": ["all-linear"], "DEFAULT": None},
    "model_type": {"qwen2-7b-instruct": "Qwen/Qwen2-7B-Instruct"},
    "dataset": {"classical-chinese-translate": "swift/classical_chinese_translate"},
}


def swift_v2_to_v4(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a SWIFT 2.x flag set to ms-swift 4.x names, dropping removed flags."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        new_key = RENAMES.get(key, key)
        if new_key is None:
            continue
        out[new_key] = VALUES.get(key, {}).get(value, value)
    return out
