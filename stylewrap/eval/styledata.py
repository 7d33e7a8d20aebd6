"""Where the p_style classifier learns the style: (plain, styled) answer pairs.

- a pairs file: JSONL, one `{"plain": ..., "styled": ...}` a line (extra keys ignored);
- a `stylewrap datagen` folder: the assistant turns of `dialogues.jsonl` (plain) and
  `stylized.jsonl` (styled), paired through the stylized row's `source_id`;
- for a run: the datagen folder its training file came from, else the config's datagen output.
"""

from __future__ import annotations

import json
from pathlib import Path

from stylewrap.errors import InputError, Location

DIALOGUES, STYLIZED = "dialogues.jsonl", "stylized.jsonl"


def _assistant_turns(row: dict) -> list[str]:
    return [m.get("content") or "" for m in row.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant"]


def _rows(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", location=Location(path, number)) from None
        if not isinstance(row, dict):
            raise InputError("expected an object", location=Location(path, number))
        rows.append(row)
    return rows


def pairs_from_file(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, row in enumerate(_rows(path), 1):
        for key in ("plain", "styled"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise InputError("needs a non-empty string", location=Location(path, number, key))
        pairs.append((row["plain"], row["styled"]))
    return pairs


def pairs_from_datagen(folder: Path) -> list[tuple[str, str]]:
    plain_by_id = {row.get("id"): _assistant_turns(row) for row in _rows(folder / DIALOGUES)}
    pairs = []
    for row in _rows(folder / STYLIZED):
        styled = _assistant_turns(row)
        plain = plain_by_id.pop(row.get("source_id"), None) or [""] * len(styled)
        pairs += list(zip(plain, styled))
    # plain dialogues that were never rewritten still teach what plain looks like
    pairs += [(text, "") for turns in plain_by_id.values() for text in turns]
    return pairs


def is_datagen_folder(folder: Path) -> bool:
    return (folder / DIALOGUES).is_file() and (folder / STYLIZED).is_file()


def load_style_pairs(path: Path) -> tuple[str, list[tuple[str, str]]]:
    path = Path(path).expanduser()
    if path.is_dir():
        if not is_datagen_folder(path):
            raise InputError(f"not a datagen folder: it needs {DIALOGUES} and {STYLIZED}", location=Location(path))
        return str(path), pairs_from_datagen(path)
    if not path.is_file():
        raise InputError("style data not found", location=Location(path), hint="a pairs JSONL or a datagen folder")
    return str(path), pairs_from_file(path)


def find_style_data(candidates: list[Path]) -> Path | None:
    """The first datagen folder among `candidates` (a run's training file's folder, the config's
    datagen output)."""
    return next((folder for folder in candidates if folder and is_datagen_folder(folder)), None)
