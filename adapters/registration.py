"""What every backend's dataset registration needs: the columns a file really uses (after checking
each row), and reading/merging the JSON registry file a backend keeps its datasets in.

Each backend unit writes its own registry (`stylewrap.backends.<name>.registration`): LLaMA-Factory's
`dataset_info.json`, ms-swift's `--custom_dataset_info` list.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Callable, Iterator

import filelock

from stylewrap.adapters.files import read_records
from stylewrap.adapters.jsonstream import DuplicateKey, _strict_decoder, iter_raw_rows
from stylewrap.errors import DataError, Location, RunFailed

LOCK_TIMEOUT_S = 120.0


@contextlib.contextmanager
def registry_lock(info_path: Path) -> Iterator[None]:
    """One registration at a time per registry file: each one reads, merges and rewrites the whole
    file, so two at once would each drop the other's entry. The lock sits beside the real file (a
    symlinked registry is locked where it lives); `filelock` releases it when the process dies."""
    real = Path(os.path.realpath(info_path))
    try:
        with filelock.FileLock(real.with_name(f".{real.name}.lock"), timeout=LOCK_TIMEOUT_S):
            yield
    except filelock.Timeout:
        raise RunFailed(f"another registration has held {real} for {LOCK_TIMEOUT_S:.0f} s", hint="try again when it ends") from None


def file_columns(path: str | Path, fmt: str | None = None, unreadable: Callable[[dict], str | None] | None = None) -> set[str]:
    """Top-level columns used anywhere in `path`, after checking every row is valid (streaming).

    `unreadable(row)` says why a backend cannot read a row that is otherwise valid (None if it can).
    """
    for _ in read_records(path, fmt):
        pass
    columns: set[str] = set()
    for raw in iter_raw_rows(path):
        if isinstance(raw.value, dict):
            columns.update(key for key, value in raw.value.items() if value not in (None, ""))
            why = unreadable(raw.value) if unreadable else None
            if why:
                raise DataError(why, location=Location(path, raw.line), hint=f"convert it first: stylewrap data convert {path} --to sharegpt -o OUT")
    return columns


def check_dataset_name(name: str) -> None:
    """A name both backends can look up: not blank, no surrounding spaces, no control characters."""
    if not name.strip() or name != name.strip() or not name.isprintable():
        raise DataError(f"dataset name {name!r} is blank, padded or holds control characters", location=Location(field="--name"),
                        hint="e.g. --name my_style")


def load_registry(path: Path, kind: type) -> tuple[str | None, object]:
    """(its text, the parsed dict or list) of a registry file; (None, empty) when it does not exist."""
    if not path.exists():
        return None, kind()
    text = path.read_text(encoding="utf-8")
    try:
        info = _strict_decoder.decode(text)
    except DuplicateKey as exc:
        # the backend keeps the last definition and silently drops the first: say where instead
        key = exc.args[0]
        repeated = [m.start() for m in re.finditer(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:", text)]
        line = text.count("\n", 0, repeated[-1]) + 1 if len(repeated) > 1 else None
        raise DataError(f"duplicate key {key!r}", location=Location(path, line, key),
                        hint="remove one of the two definitions first") from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise DataError(f"not valid JSON: {getattr(exc, 'msg', exc)}", location=Location(path, line)) from None
    if not isinstance(info, kind):
        raise DataError(f"must hold a JSON {'object' if kind is dict else 'list'}", location=Location(path, 1))
    return text, info


def indent_of(text: str) -> str:
    for line in text.splitlines()[1:]:
        if line.strip():
            return line[: len(line) - len(line.lstrip())] or "  "
    return "  "


def appended_entry(text: str, name: str, entry: dict) -> str | None:
    """`text` (a JSON object) with `name: entry` added before its closing brace, other bytes kept."""
    close = text.rstrip().rfind("}")
    if close < 0:
        return None
    head = text[:close].rstrip()
    indent = indent_of(text)
    body = json.dumps(entry, ensure_ascii=False, indent=len(indent)).replace("\n", "\n" + indent)
    separator = "" if head.endswith("{") else ","
    return f"{head}{separator}\n{indent}{json.dumps(name, ensure_ascii=False)}: {body}\n}}\n"
