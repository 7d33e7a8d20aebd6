"""LLaMA-Factory's dataset registration: `DIR/dataset_info.json`.

LLaMA-Factory (0.9.5, llamafactory/data/parser.py) reads an object of name -> {file_name,
formatting, columns, tags}; `file_name` is joined to the dataset dir, so an absolute path works
too. How it reads each of stylewrap's formats is the table `FORMATS` below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stylewrap.adapters.files import detect_format
from stylewrap.adapters.registration import appended_entry, file_columns, indent_of, load_registry, registry_lock
from stylewrap.errors import DataError, Location
from stylewrap.fsutil import atomic_write_json, atomic_write_text

INFO_FILE = "dataset_info.json"


@dataclass(frozen=True)
class FormatEntry:
    """How LLaMA-Factory reads one of stylewrap's formats."""

    # the dataset_info.json entry (without file_name): formatting, columns, tags
    entry: dict
    # LLaMA-Factory column -> file column, declared only when the file has that column (its
    # converter indexes the column unconditionally, so declaring an absent one fails the load)
    optional_columns: dict = field(default_factory=dict)
    # why its converter could not read a (valid) row of this format; None when it can
    unreadable: Callable[[dict], str | None] | None = None


def _cannot_read_messages(row: dict) -> str | None:
    for index, item in enumerate(row["messages"]):
        if item.get("tool_calls"):
            return f"messages[{index}] has tool_calls, which LLaMA-Factory reads only from sharegpt files"
        if not isinstance(item.get("content"), str):
            return f"messages[{index}].content is a list of parts; LLaMA-Factory needs plain strings"
    return None


def _cannot_read_swift(row: dict) -> str | None:
    if isinstance(row.get("conversations"), str):
        return "conversations is a JSON string; LLaMA-Factory needs a list"
    return None


def _cannot_read_trl_pairs(row: dict) -> str | None:
    if isinstance(row.get("chosen"), list):
        return "chosen/rejected are whole conversations (TRL's shape); LLaMA-Factory reads them as ranking rows"
    return None


FORMATS: dict[str, FormatEntry] = {
    "qa": FormatEntry({"formatting": "alpaca", "columns": {"prompt": "问", "query": None, "response": "答"}}),
    # its "openai" converter appends "detailed thinking off" to the system prompt; the sharegpt
    # converter with OpenAI tags reads the same rows unchanged
    "messages": FormatEntry(
        {"formatting": "sharegpt", "columns": {"messages": "messages"},
         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                  "system_tag": "system", "observation_tag": "tool", "function_tag": "function_call"}},
        optional_columns={"tools": "tools"}, unreadable=_cannot_read_messages),
    "swift": FormatEntry(
        {"formatting": "sharegpt", "columns": {"messages": "conversations"},
         "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "user", "assistant_tag": "assistant",
                  "system_tag": "system", "observation_tag": "observation", "function_tag": "function_call"}},
        optional_columns={"tools": "tools"}, unreadable=_cannot_read_swift),
    "sharegpt": FormatEntry({"formatting": "sharegpt", "columns": {"messages": "conversations"}},
                            optional_columns={"system": "system", "tools": "tools"}),
    "alpaca": FormatEntry({"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
                          optional_columns={"system": "system", "history": "history", "tools": "tools"}),
    # preference rows (adapters/preference.py): `ranking: true` makes its converter read chosen/rejected
    # (strings in alpaca rows, one turn each in sharegpt rows); `kto_tag` names KTO's boolean column
    "pairs": FormatEntry({"ranking": True, "columns": {"prompt": "question", "chosen": "chosen", "rejected": "rejected"}},
                         optional_columns={"system": "system", "history": "history"}, unreadable=_cannot_read_trl_pairs),
    "ranking": FormatEntry({"formatting": "sharegpt", "ranking": True,
                            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
                           optional_columns={"system": "system", "tools": "tools"}),
    "messages_kto": FormatEntry(
        {"formatting": "sharegpt", "columns": {"messages": "messages", "kto_tag": "label"},
         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                  "system_tag": "system", "observation_tag": "tool", "function_tag": "function_call"}},
        optional_columns={"tools": "tools"}, unreadable=_cannot_read_messages),
    "messages_pairs": FormatEntry({}, unreadable=lambda row: "LLaMA-Factory reads no rejected_response column; "
                                                           "write the pairs as ranking rows"),
}


def _file_name(dataset_dir: Path, file_path: Path) -> str:
    try:
        return str(file_path.resolve().relative_to(dataset_dir.resolve()))
    except ValueError:
        return str(file_path.resolve())


def dataset_entry(dataset_dir: str | Path, file_path: str | Path, fmt: str | None = None) -> dict:
    """The dataset_info.json entry LLaMA-Factory needs to read `file_path` (validated first)."""
    file_path = Path(file_path)
    fmt = fmt or detect_format(file_path)
    spec = FORMATS.get(fmt, FormatEntry({}))
    present = file_columns(file_path, fmt, spec.unreadable)
    entry: dict = {"file_name": _file_name(Path(dataset_dir), file_path)}
    if spec.entry.get("formatting", "alpaca") != "alpaca":
        entry["formatting"] = spec.entry["formatting"]
    if spec.entry.get("ranking"):
        entry["ranking"] = True
    columns = dict(spec.entry.get("columns", {}))
    columns.update({lf: col for lf, col in spec.optional_columns.items() if col in present})
    if columns:
        entry["columns"] = columns
    if spec.entry.get("tags"):
        entry["tags"] = dict(spec.entry["tags"])
    return entry


def register(dataset_dir: str | Path, name: str, file_path: str | Path, fmt: str | None = None, *, force: bool = False) -> Path:
    """Add (or with `force`, redefine) `name` in DIR/dataset_info.json, atomically.

    A new entry is spliced in before the closing brace, so every other entry keeps its exact bytes.
    Registering the same definition again is a no-op; a different definition needs `force`.
    """
    dataset_dir = Path(dataset_dir)
    info_path = dataset_dir / INFO_FILE
    entry = dataset_entry(dataset_dir, file_path, fmt)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    with registry_lock(info_path):
        _merge(info_path, name, entry, force)
    return info_path


def _merge(info_path: Path, name: str, entry: dict, force: bool) -> None:
    text, info = load_registry(info_path, dict)
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
        atomic_write_json(info_path, info, indent=len(indent_of(text or "")))
        return
    new_text = appended_entry(text, name, entry) if text is not None else None
    if new_text is None or json.loads(new_text) != {**info, name: entry}:
        new_text = json.dumps({**info, name: entry}, ensure_ascii=False, indent=2) + "\n"
    atomic_write_text(info_path, new_text)


def hub_usage(repo_id: str, local_path: Path, fmt: str) -> tuple[str, str]:
    """How to read `local_path`, published as dataset `repo_id` on ModelScope: a dataset_info.json entry."""
    entry = dataset_entry(local_path.parent, local_path, fmt)
    entry.pop("file_name")
    how = ("LLaMA-Factory: add this entry to your `dataset_info.json` and run with `USE_MODELSCOPE_HUB=1`\n"
           "(it loads every data file of the repo):")
    return how, json.dumps({repo_id.split("/", 1)[-1]: {"ms_hub_url": repo_id, **entry}}, ensure_ascii=False)
