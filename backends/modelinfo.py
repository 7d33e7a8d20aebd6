"""What stylewrap can tell about a base model without loading it: its `config.json`.

A local folder has it; a hub id has it once either hub's client has downloaded the model
(Hugging Face's `models--Org--Name/snapshots/*` cache, ModelScope's `models/Org/Name`). From it
come the model's family and its chat template (`MODEL_FAMILIES`) and the shape the memory plan in
`autotune` needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A local model folder's config.json `model_type` -> the chat template stylewrap's `template`
# option names for it (each backend's column renames it where its own name differs).
MODEL_FAMILIES: dict[str, str] = {
    "qwen2": "qwen",
    "qwen3": "qwen3",
    "llama": "llama3",
    "mistral": "mistral",
    "glm4": "glm4",
}


def _hub_caches(model_id: str) -> list[Path]:
    hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    hf_hub = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub")).expanduser()
    modelscope = Path(os.environ.get("MODELSCOPE_CACHE", "~/.cache/modelscope")).expanduser()
    snapshots = sorted((hf_hub / f"models--{model_id.replace('/', '--')}" / "snapshots").glob("*"),
                       key=lambda p: p.stat().st_mtime, reverse=True)
    return [*snapshots, modelscope / "hub" / "models" / model_id, modelscope / "hub" / model_id]


def model_folder(model: str) -> Path | None:
    """The folder holding the model's config.json: itself when local, else a hub cache's copy."""
    folder = Path(model).expanduser()
    candidates = [folder] if folder.is_dir() else _hub_caches(model) if model.count("/") == 1 else []
    return next((candidate for candidate in candidates if (candidate / "config.json").is_file()), None)


def model_config(model: str) -> dict[str, Any] | None:
    """The model's config.json; None when it is nowhere on disk."""
    folder = model_folder(model)
    return json.loads((folder / "config.json").read_text(encoding="utf-8")) if folder else None


def model_family(model: str) -> dict[str, str]:
    """{'model_type': ..., 'template': ...} for a model family stylewrap knows, else {}.

    `swift_model_type` repeats `model_type` for backends/compare.py (branch eval), which reads that
    key; it goes when compare.py reads `model_type`."""
    family = (model_config(model) or {}).get("model_type", "")
    if family not in MODEL_FAMILIES:
        return {}
    return {"model_type": family, "template": MODEL_FAMILIES[family], "swift_model_type": family}


@dataclass(frozen=True)
class ModelShape:
    """The numbers a decoder-only transformer's memory use follows."""

    family: str
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    params: int

    @classmethod
    def of(cls, model: str) -> ModelShape | None:
        config = model_config(model)
        if not config:
            return None
        # multimodal configs nest the language model's numbers
        text = config.get("text_config") or config
        try:
            hidden, layers = int(text["hidden_size"]), int(text["num_hidden_layers"])
            intermediate, vocab = int(text["intermediate_size"]), int(text["vocab_size"])
            heads = int(text["num_attention_heads"])
        except (KeyError, TypeError, ValueError):
            return None
        kv = hidden // heads * int(text.get("num_key_value_heads") or heads)
        per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate
        embeddings = vocab * hidden * (1 if text.get("tie_word_embeddings") else 2)
        return cls(family=str(config.get("model_type", "")), layers=layers, hidden=hidden,
                   intermediate=intermediate, vocab=vocab, params=layers * per_layer + embeddings)
