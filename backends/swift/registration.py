"""ms-swift's dataset registration: the JSON list `--custom_dataset_info FILE` reads.

ms-swift (4.6, swift/dataset/register.py) reads DatasetMeta dicts: dataset_name, dataset_path
(relative to FILE's folder), `columns` (renames file columns to its own) and `messages` (the role
mapping of its MessagesPreprocessor). How it reads each of stylewrap's formats is `FORMATS`.
"""

from __future__ import annotations

import json
from pathlib import Path

from stylewrap.adapters.files import detect_format, read_records
from stylewrap.adapters.registration import load_registry, registry_lock
from stylewrap.errors import DataError, Location
from stylewrap.fsutil import atomic_write_json

INFO_FILE = "custom_dataset_info.json"

# stylewrap format -> the registration keys besides dataset_name/dataset_path
FORMATS: dict[str, dict] = {
    "qa": {"columns": {"问": "query", "答": "response"}},
    "messages": {"messages": {"role_key": "role", "content_key": "content", "user_role": "user", "assistant_role": "assistant"}},
    "swift": {"messages": {"role_key": "from", "content_key": "value", "user_role": "user", "assistant_role": "assistant"}},
    "sharegpt": {"messages": {"role_key": "from", "content_key": "value", "user_role": "human", "assistant_role": "gpt"}},
    # preference rows (adapters/preference.py): rejected_response and label are its own column names
    "messages_pairs": {"messages": {"role_key": "role", "content_key": "content", "user_role": "user", "assistant_role": "assistant"}},
    "messages_kto": {"messages": {"role_key": "role", "content_key": "content", "user_role": "user", "assistant_role": "assistant"}},
    "pairs": {"columns": {"question": "query", "chosen": "response", "rejected": "rejected_response"}},
}


def dataset_entry(name: str, file_path: str | Path, fmt: str | None = None) -> dict:
    """One entry of what `--custom_dataset_info` reads, for `file_path` in format `fmt`."""
    file_path = Path(file_path)
    keys = FORMATS.get(fmt or detect_format(file_path), {})
    return {"dataset_name": name, "dataset_path": str(file_path.resolve()), **json.loads(json.dumps(keys))}


def register(dataset_dir: str | Path, name: str, file_path: str | Path, fmt: str | None = None, *, force: bool = False) -> Path:
    """Merge the registration of `name` into DIR/custom_dataset_info.json (created when missing), atomically."""
    info_path = Path(dataset_dir) / INFO_FILE
    fmt = fmt or detect_format(file_path)
    for _ in read_records(file_path, fmt):
        pass
    entry = dataset_entry(name, file_path, fmt)
    info_path.parent.mkdir(parents=True, exist_ok=True)
    with registry_lock(info_path):
        _merge(info_path, name, entry, force)
    return info_path


def _merge(info_path: Path, name: str, entry: dict, force: bool) -> None:
    _, entries = load_registry(info_path, list)
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


def hub_usage(repo_id: str, local_path: Path, fmt: str) -> tuple[str, str]:
    """How to read `local_path`, published as dataset `repo_id` on ModelScope: a custom info entry."""
    entry = dataset_entry(repo_id.split("/", 1)[-1], local_path, fmt)
    entry.pop("dataset_path")
    entry.pop("dataset_name")
    how = ("ms-swift: save this as `dataset_info.json` and train with\n"
           f"`swift sft --custom_dataset_info dataset_info.json --dataset {repo_id} --use_hf false ...`")
    return how, json.dumps([{"ms_dataset_id": repo_id, **entry}], ensure_ascii=False)
