"""Append-only JSONL checkpoints that survive `kill -9`.

Every finished item is one line written with a single `os.write` on an O_APPEND descriptor, so
it reaches the kernel the moment it is done and a killed process loses at most the line it was
writing. On reopen a half-written last line is cut off (and reported), never parsed.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from stylewrap.errors import Location
from stylewrap.fsutil import atomic_write_text, held_exclusively

LOCK_FILE = ".datagen.lock"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One run per output folder: a second one would send the same items twice and could cut
    the first one's line in half when it tidies a checkpoint's tail."""
    with held_exclusively(folder / LOCK_FILE, "another `stylewrap datagen` run is writing here",
                          location=Location(folder), hint="wait for it, or use another --output"):
        yield


def read_checkpoint(path: Path) -> Iterator[dict]:
    """Every complete line of a checkpoint; a torn last line is skipped."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            try:
                yield json.loads(raw)
            except ValueError:
                continue


class Checkpoint:
    """One JSONL file of finished items keyed by `id`."""

    def __init__(self, path: Path):
        self.path = path
        self.torn_bytes = self._cut_torn_tail()
        self.records: dict[str, dict] = {}
        for record in read_checkpoint(path):
            self.records[record["id"]] = record
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._rewrite = False

    def _cut_torn_tail(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb+") as handle:
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                handle.truncate(keep)
            return len(data) - keep

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def values(self) -> list[dict]:
        return list(self.records.values())

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, line)
        self.records[record["id"]] = record

    def forget(self, item_ids) -> None:
        """Drop these items (e.g. failures that later succeeded); the file is rewritten on close."""
        dropped = [item_id for item_id in item_ids if item_id in self.records]
        for item_id in dropped:
            del self.records[item_id]
        self._rewrite = self._rewrite or bool(dropped)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            if self._rewrite:
                # whole or not at all: a crash here leaves the old file, which the next run tidies again
                atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records.values()))
                self._rewrite = False

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
