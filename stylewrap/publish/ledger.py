"""Which data files this machine published, by content: a model card links the dataset its run
trained on (the same bytes, wherever the file sits now) without being told `--dataset-repo`.

One JSON file, `$STYLEWRAP_CACHE_DIR/published-datasets.json` (default ~/.cache/stylewrap):
{sha256 of the file: [repo id, ...]}, written after an upload succeeds.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from stylewrap.fsutil import atomic_write_json

LEDGER = "published-datasets.json"


def ledger_path() -> Path:
    return Path(os.environ.get("STYLEWRAP_CACHE_DIR", "~/.cache/stylewrap")).expanduser() / LEDGER


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read() -> dict[str, list[str]]:
    try:
        data = json.loads(ledger_path().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def record_published(repo_id: str, files: Iterable[Path]) -> None:
    ledger = _read()
    for path in files:
        repos = ledger.setdefault(file_digest(path), [])
        if repo_id not in repos:
            repos.append(repo_id)
    atomic_write_json(ledger_path(), ledger)


def published_as(path: Path | None) -> list[str]:
    """The dataset repos holding exactly this file, as published from here."""
    if path is None or not Path(path).is_file():
        return []
    return list(_read().get(file_digest(Path(path)), []))
