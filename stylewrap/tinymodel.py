"""A tiny random Qwen2 chat model (under 1 MB), built offline, for tests and `stylewrap demo`.

The torch/transformers part runs inside a backend environment's python (the core install has no
torch): `_tinymodel_build.py` is executed there as a plain script. The folder is a normal Hugging
Face model folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json with a
ChatML chat_template, generation_config.json) that LLaMA-Factory (template `qwen`) and ms-swift
(model_type `qwen2`, template `qwen`) train, export and serve like any Qwen2 chat model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from stylewrap.config import StylewrapConfig
from stylewrap.errors import BackendNotInstalled, InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_json

BUILDER = Path(__file__).with_name("_tinymodel_build.py")
# A model folder holding this stamp with the same recipe hash is reused instead of rebuilt.
STAMP_FILE = "stylewrap_tinymodel.json"
BACKENDS_IN_ORDER = ("swift", "llamafactory")


def builtin_corpus() -> list[Path]:
    """The demo dataset plus a little English, shipped in the package: the default corpus."""
    templates = resources.files("stylewrap.templates")
    return [Path(str(templates / "demo" / "translational_sample.jsonl")), Path(str(templates / "tinymodel" / "corpus.txt"))]


def builder_python(config: StylewrapConfig | None = None) -> Path:
    """A python that has torch + transformers + tokenizers: a backend env's, else this one."""
    from stylewrap.backends.envs import env_python

    for name in BACKENDS_IN_ORDER:
        python = env_python(name, config)
        if python is not None:
            return python
    if all(importlib.util.find_spec(module) for module in ("torch", "transformers", "tokenizers")):
        return Path(sys.executable)
    raise BackendNotInstalled(
        "building the tiny model needs torch and transformers, and no backend environment is installed",
        hint="run `stylewrap backend install swift` (or llamafactory)",
    )


def recipe_hash(corpus: list[Path]) -> str:
    digest = hashlib.sha256(BUILDER.read_bytes())
    for path in corpus:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_tiny_model(
    out_dir: str | Path,
    *,
    python: str | Path | None = None,
    corpus: str | Path | list[str | Path] | None = None,
    config: StylewrapConfig | None = None,
) -> Path:
    """Build (or reuse, when already built from the same recipe) the tiny model in `out_dir`.

    `corpus` trains the tokenizer: text files, or JSON/JSONL datasets whose string values are
    used (e.g. TslDial's 3_TranslationalDialogues.jsonl); default: the built-in corpus. The folder
    appears complete or not at all: it is built next to `out_dir` and renamed into place.
    """
    from stylewrap.runner import script_invocation as env_script_invocation
    from stylewrap.runner import run

    out_dir = Path(out_dir)
    if corpus is None:
        corpus = builtin_corpus()
    corpus = [Path(path) for path in ([corpus] if isinstance(corpus, (str, Path)) else corpus)]
    missing = [path for path in corpus if not path.is_file()]
    if missing:
        raise InputError("corpus file not found", location=Location(missing[0]))
    recipe = recipe_hash(corpus)
    stamp = out_dir / STAMP_FILE
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")).get("recipe") == recipe:
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()) and not stamp.is_file():
        raise InputError(f"{out_dir} exists and is not a tiny model folder", hint="choose an empty folder")
    python = Path(python) if python is not None else builder_python(config)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        result = run(
            env_script_invocation(
                python,
                BUILDER,
                str(work),
                *map(str, corpus),
                env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
            )
        )
        if not result.ok:
            raise RunFailed(f"building the tiny model with {python} failed: {' | '.join(result.tail[-3:])}")
        atomic_write_json(work / STAMP_FILE, {"recipe": recipe, "corpus": [str(path) for path in corpus], "python": str(python)})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return out_dir
