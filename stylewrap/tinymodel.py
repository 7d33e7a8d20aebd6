"""The tiny Qwen2 chat model (about 1 MB) that speaks plain everyday Chinese, built offline, for
tests and `stylewrap demo`.

It is pretrained on the CPU at build time on chats that `stylewrap.demogrammar` expands from the
project's own grammar (templates/tinymodel/grammar.yaml), rendered in ChatML with the system
prompts the backends' `qwen` templates inject, so it answers a held-out everyday question with a
legible plain answer whichever backend prompts it. Trained on styled rows, it learns the style;
that is what the purpose tests check.

The torch/transformers part runs inside a backend environment's python (the core install has no
torch): `_tinymodel_build.py` is executed there as a plain script and gets the chats as files. The
folder is a normal Hugging Face model folder (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json with a ChatML chat_template, generation_config.json) that LLaMA-Factory
(template `qwen`) and ms-swift (model_type `qwen2`, template `qwen`) train, export and serve like
any Qwen2 chat model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

from stylewrap import demogrammar
from stylewrap.config import StylewrapConfig
from stylewrap.errors import BackendNotInstalled, InputError, RunFailed
from stylewrap.fsutil import atomic_write_json

BUILDER = Path(__file__).with_name("_tinymodel_build.py")
# A model folder holding this stamp with the same recipe hash is reused instead of rebuilt.
STAMP_FILE = "stylewrap_tinymodel.json"
# The builder's own progress lines start with this; everything else it prints is the libraries'.
PROGRESS_PREFIX = "tinymodel: "
# Built once per recipe for every project on this machine; projects get a copy (about 1 MB).
CACHE_DIR = Path("~/.cache/stylewrap/tiny-model")
BACKENDS_IN_ORDER = ("swift", "llamafactory")


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


def builder_inputs() -> dict[str, str]:
    """The builder's input files by name: pretraining chats, tokenizer text, whole words."""
    chats = demogrammar.pretraining_chats()
    pairs = demogrammar.all_pairs()
    text = [*(line for pair in pairs for line in (pair.question, pair.answer)),
            *(demogrammar.stylize(pair.answer, n) for n, pair in enumerate(pairs)),
            *(system for system in demogrammar.grammar()["system_prompts"] if system)]
    words = sorted({pair.topic for pair in pairs})
    return {
        "chats.jsonl": "".join(json.dumps({"messages": chat}, ensure_ascii=False) + "\n" for chat in chats),
        "tokenizer.txt": "\n".join(text) + "\n",
        "words.txt": "\n".join(words) + "\n",
    }


def recipe_hash(inputs: dict[str, str]) -> str:
    digest = hashlib.sha256(BUILDER.read_bytes())
    for name, text in sorted(inputs.items()):
        digest.update(name.encode() + b"\0" + text.encode("utf-8"))
    return digest.hexdigest()


def build_tiny_model(
    out_dir: str | Path,
    *,
    python: str | Path | None = None,
    config: StylewrapConfig | None = None,
    on_line=None,
) -> Path:
    """The tiny model in `out_dir`: reused when already built from the same recipe, else copied
    from the user cache (~/.cache/stylewrap/tiny-model/<recipe>), which is built first if needed.

    Folders appear complete or not at all: each is written next to its place and renamed into it.
    The builder's progress lines go to `on_line` (default: nowhere).
    """
    out_dir = Path(out_dir)
    inputs = builder_inputs()
    recipe = recipe_hash(inputs)
    if _built_from(out_dir, recipe):
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / STAMP_FILE).is_file():
        raise InputError(f"{out_dir} exists and is not a tiny model folder", hint="choose an empty folder")
    cached = CACHE_DIR.expanduser() / recipe[:16]
    if not _built_from(cached, recipe):
        python = Path(python) if python is not None else builder_python(config)
        with _next_to(cached) as work:
            _build(work, inputs, python, on_line)
            atomic_write_json(work / STAMP_FILE, {"recipe": recipe, "python": str(python)})
    if out_dir.resolve() != cached.resolve():
        with _next_to(out_dir) as work:
            shutil.copytree(cached, work, dirs_exist_ok=True)
    return out_dir


def _built_from(folder: Path, recipe: str) -> bool:
    stamp = folder / STAMP_FILE
    return stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")).get("recipe") == recipe


@contextlib.contextmanager
def _next_to(target: Path):
    """A scratch folder beside `target` that replaces it when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield work
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work)


def _build(work: Path, inputs: dict[str, str], python: Path, on_line) -> None:
    from stylewrap.runner import script_invocation
    from stylewrap.runner import run

    with tempfile.TemporaryDirectory(prefix="stylewrap-tinymodel-") as scratch:
        files = []
        for name, text in inputs.items():
            files.append(Path(scratch) / name)
            files[-1].write_text(text, encoding="utf-8")
        result = run(
            script_invocation(
                python,
                BUILDER,
                str(work),
                *map(str, files),
                env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
            ),
            on_line=(lambda line: on_line(line[len(PROGRESS_PREFIX):]) if line.startswith(PROGRESS_PREFIX) else None)
            if on_line else None,
        )
    if not result.ok:
        raise RunFailed(f"building the tiny model with {python} failed: {' | '.join(result.tail[-3:])}")
