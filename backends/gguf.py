"""GGUF through llama.cpp's maintained converter (`convert_hf_to_gguf.py`), from package registries.

llama.cpp's converter is a script, not a pip package; the `gguf` package on PyPI ships only gguf-py
(`gguf_dump`, `gguf_new_metadata`, the reader). The `llama-cpp-python` sdist on PyPI vendors the
whole llama.cpp tree, so stylewrap takes the converter from there: `convert_hf_to_gguf.py`, its
`conversion/` package and the `gguf-py/` it was written against, out of the pinned sdist
(`pip download --no-binary`), into `~/.cache/stylewrap/llama.cpp/<version>/`. The vendored gguf-py,
not the PyPI wheel: both say 0.19.0, but the converter of llama-cpp-python 0.3.36 uses
`gguf.LazyChunkedTensor`, which the 0.19.0 wheel lacks. It runs in the backend env's python (torch,
transformers, numpy, pyyaml are there) with that folder first on PYTHONPATH, so the env is never
changed. A llama.cpp checkout named by STYLEWRAP_LLAMA_CPP is used instead when set.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from stylewrap.errors import InputError, Location, RunFailed

# the sdist that vendors llama.cpp (its vendor/llama.cpp is a llama.cpp checkout)
LLAMA_CPP_SDIST = ("llama-cpp-python", "0.3.36")
CONVERTER_ENV = "STYLEWRAP_LLAMA_CPP"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
VENDORED = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
GGUF_DIR = "gguf"
LOG_FILE = "gguf.log"
# what the converter says when it meets a tokenizer it has no pre-tokenizer for (llama.cpp's words)
UNKNOWN_TOKENIZER = "BPE pre-tokenizer was not recognized"


def cache_dir() -> Path:
    return Path(os.environ.get("STYLEWRAP_CACHE", Path.home() / ".cache" / "stylewrap")).expanduser() \
        / "llama.cpp" / LLAMA_CPP_SDIST[1]


def converter(*, fetch: bool) -> tuple[Path, list[str]] | None:
    """(the converter script, PYTHONPATH entries) from a checkout or the cache; `fetch`: fill the cache
    from PyPI when empty. None when there is none and `fetch` is off."""
    checkout = os.environ.get(CONVERTER_ENV)
    if checkout:
        script = Path(checkout) / CONVERTER_SCRIPT
        if not script.is_file():
            raise InputError(f"{CONVERTER_ENV}={checkout} has no {CONVERTER_SCRIPT}", location=Location(field=CONVERTER_ENV))
        return script, [str(Path(checkout) / "gguf-py"), checkout]
    folder = cache_dir()
    if not (folder / CONVERTER_SCRIPT).is_file():
        if not fetch:
            return None
        fetch_converter(folder)
    return folder / CONVERTER_SCRIPT, [str(folder / "gguf-py"), str(folder)]


def fetch_converter(folder: Path) -> None:
    """The converter and its gguf-py out of the llama-cpp-python sdist, into `folder` at once."""
    from stylewrap import runner

    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        work = Path(scratch)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
        name, version = LLAMA_CPP_SDIST
        argv = [*pip, "download", "--no-deps", "--no-binary", ":all:", f"{name}=={version}", "-d", str(work / "sdist")]
        result = runner.run(runner.Invocation(argv), tail_lines=20)
        if not result.ok:
            raise RunFailed(f"could not fetch llama.cpp's converter from PyPI ({name}=={version} sdist)",
                            hint=" | ".join(result.tail[-2:]) + f"; or set {CONVERTER_ENV}=/path/to/llama.cpp")
        (sdist,) = (work / "sdist").glob("*.tar.gz")
        prefix = f"{sdist.name[: -len('.tar.gz')]}/vendor/llama.cpp/"
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers()
                       if m.name.startswith(prefix) and m.name[len(prefix):].startswith(VENDORED) and m.isfile()]
            for member in members:
                member.name = member.name[len(prefix):]
            archive.extractall(work / "out", members=members, filter="data")
        if not (work / "out" / CONVERTER_SCRIPT).is_file():
            raise RunFailed(f"{sdist.name} has no vendor/llama.cpp/{CONVERTER_SCRIPT}")
        if folder.exists():
            shutil.rmtree(folder)
        (work / "out").rename(folder)


def convert(python: Path, merged: Path, out_file: Path, log_file: Path, *, fetch: bool = True) -> Path:
    """`merged` (a Hugging Face model folder) -> `out_file` (GGUF, f16), by llama.cpp's converter."""
    from stylewrap import runner

    found = converter(fetch=fetch)
    if found is None:
        raise InputError("llama.cpp's converter is not here", hint="`stylewrap export RUN --to gguf` fetches it")
    script, paths = found
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    env = {"PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = runner.run(runner.Invocation([str(python), str(script), str(merged), "--outfile", str(partial),
                                           "--outtype", "f16"], env=env), log_file=log_file, tail_lines=40)
    if not result.ok:
        partial.unlink(missing_ok=True)
        if any(UNKNOWN_TOKENIZER in line for line in result.tail):
            raise InputError("llama.cpp's converter does not know this model's tokenizer (its pre-tokenizer is none of "
                             "the ones llama.cpp lists), so it writes no GGUF", location=Location(merged),
                             hint=f"models llama.cpp supports convert (Qwen2, Llama, ...); details in {log_file}")
        raise RunFailed(f"llama.cpp's converter failed: {' | '.join(result.tail[-2:])}", location=Location(log_file))
    partial.replace(out_file)
    return out_file
