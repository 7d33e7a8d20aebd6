"""Dataset registrations the backends read: LLaMA-Factory's dataset_info.json, ms-swift's custom info.

LLaMA-Factory (0.9.5, llamafactory/data/parser.py) reads `DIR/dataset_info.json`, an object of
name -> {file_name, formatting, columns, tags}; `file_name` is joined to the dataset dir, so an
absolute path works too. ms-swift (4.6, swift/dataset/register.py) reads `--custom_dataset_info
FILE`, a JSON list of DatasetMeta dicts: dataset_name, dataset_path (relative to FILE's folder),
`columns` (renames) and `messages` (MessagesPreprocessor's role mapping).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Callable, Iterator

import filelock

from stylewrap.adapters.files import detect_format, format_named, read_records
from stylewrap.adapters.jsonstream import DuplicateKey, _strict_decoder, iter_raw_rows
from stylewrap.errors import DataError, Location, RunFailed
from stylewrap.fsutil import atomic_write_json, atomic_write_text

LLAMAFACTORY_INFO = "dataset_info.json"
SWIFT_INFO = "custom_dataset_info.json"
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


def _file_name(dataset_dir: Path, file_path: Path) -> str:
    try:
        return str(file_path.resolve().relative_to(dataset_dir.resolve()))
    except ValueError:
        return str(file_path.resolve())


def llamafactory_entry(dataset_dir: str | Path, file_path: str | Path, fmt: str | None = None) -> dict:
    """The dataset_info.json entry LLaMA-Factory needs to read `file_path` (validated first)."""
    file_path = Path(file_path)
    fmt = fmt or detect_format(file_path)
    spec = format_named(fmt)
    present = file_columns(file_path, fmt, spec.llamafactory_unreadable)
    entry: dict = {"file_name": _file_name(Path(dataset_dir), file_path)}
    if spec.llamafactory.get("formatting", "alpaca") != "alpaca":
        entry["formatting"] = spec.llamafactory["formatting"]
    columns = dict(spec.llamafactory.get("columns", {}))
    columns.update({lf: col for lf, col in spec.llamafactory_optional_columns.items() if col in present})
    if columns:
        entry["columns"] = columns
    if spec.llamafactory.get("tags"):
        entry["tags"] = dict(spec.llamafactory["tags"])
    return entry


def check_dataset_name(name: str) -> None:
    """A name both backends can look up: not blank, no surrounding spaces, no control characters."""
    if not name.strip() or name != name.strip() or not name.isprintable():
        raise DataError(f"dataset name {name!r} is blank, padded or holds control characters", location=Location(field="--name"),
                        hint="e.g. --name my_style")


def _load_info(path: Path, kind: type) -> tuple[str | None, object]:
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


def _indent_of(text: str) -> str:
    for line in text.splitlines()[1:]:
        if line.strip():
            return line[: len(line) - len(line.lstrip())] or "  "
    return "  "


def _appended(text: str, name: str, entry: dict) -> str | None:
    """`text` (a JSON object) with `name: entry` added before its closing brace, other bytes kept."""
    close = text.rstrip().rfind("}")
    if close < 0:
        return None
    head = text[:close].rstrip()
    indent = _indent_of(text)
    body = json.dumps(entry, ensure_ascii=False, indent=len(indent)).replace("\n", "\n" + indent)
    separator = "" if head.endswith("{") else ","
    return f"{head}{separator}\n{indent}{json.dumps(name, ensure_ascii=False)}: {body}\n}}\n"


def register_llamafactory(dataset_dir: str | Path, name: str, file_path: str | Path, fmt: str | None = None, *, force: bool = False) -> Path:
    """Add (or with `force`, redefine) `name` in DIR/dataset_info.json, atomically.

    A new entry is spliced in before the closing brace, so every other entry keeps its exact bytes.
    Registering the same definition again is a no-op; a different definition needs `force`.
    """
    check_dataset_name(name)
    dataset_dir = Path(dataset_dir)
    info_path = dataset_dir / LLAMAFACTORY_INFO
    entry = llamafactory_entry(dataset_dir, file_path, fmt)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    with registry_lock(info_path):
        _merge_llamafactory(info_path, name, entry, force)
    return info_path


def _merge_llamafactory(info_path: Path, name: str, entry: dict, force: bool) -> None:
    text, info = _load_info(info_path, dict)
    if name in info:
        if info[name] == entry:
            return
        if not force:
            raise DataError(
                f"dataset {name!r} is already registered with another definition: {json.dumps(info[name], ensure_ascii=False)}",
                location=Location(info_path, None, name),
                hint="pass --force to replace it, or pick another --name",
            )
        info[name] = entry
        atomic_write_json(info_path, info, indent=len(_indent_of(text or "")))
        return
    new_text = _appended(text, name, entry) if text is not None else None
    if new_text is None or json.loads(new_text) != {**info, name: entry}:
        new_text = json.dumps({**info, name: entry}, ensure_ascii=False, indent=2) + "\n"
    atomic_write_text(info_path, new_text)


def swift_dataset_registration(name: str, file_path: str | Path, fmt: str | None = None) -> dict:
    """One entry of what ms-swift's `--custom_dataset_info` reads, for `file_path` in format `fmt`."""
    file_path = Path(file_path)
    spec = format_named(fmt or detect_format(file_path))
    return {"dataset_name": name, "dataset_path": str(file_path.resolve()), **json.loads(json.dumps(spec.swift))}


def register_swift(info_path: str | Path, name: str, file_path: str | Path, fmt: str | None = None, *, force: bool = False) -> Path:
    """Merge the registration of `name` into the JSON list at `info_path` (created when missing), atomically."""
    check_dataset_name(name)
    info_path = Path(info_path)
    fmt = fmt or detect_format(file_path)
    for _ in read_records(file_path, fmt):
        pass
    entry = swift_dataset_registration(name, file_path, fmt)
    info_path.parent.mkdir(parents=True, exist_ok=True)
    with registry_lock(info_path):
        _merge_swift(info_path, name, entry, force)
    return info_path


def _merge_swift(info_path: Path, name: str, entry: dict, force: bool) -> None:
    _, entries = _load_info(info_path, list)
    for index, existing in enumerate(entries):
        if isinstance(existing, dict) and existing.get("dataset_name") == name:
            if existing == entry:
                return
            if not force:
                raise DataError(
                    f"dataset {name!r} is already registered with another definition",
                    location=Location(info_path, None, f"[{index}]"),
                    hint="pass --force to replace it, or pick another --name",
                )
            entries[index] = entry
            break
    else:
        entries.append(entry)
    atomic_write_json(info_path, entries)


def swift_info_path(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / SWIFT_INFO

