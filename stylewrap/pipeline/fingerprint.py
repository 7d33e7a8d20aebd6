"""Content fingerprints of a stage's inputs.

A file is hashed by streaming it (a multi-GB dataset never sits in memory); its digest is cached
by (size, mtime) so an unchanged file is read once, however often `stylewrap run` is started. A
file whose mtime moved but whose bytes did not (`touch`) is re-read and comes out equal: the
fingerprint follows content, never timestamps or paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from stylewrap.fsutil import atomic_write_json

CHUNK = 1 << 20
CACHE_VERSION = 1


def stream_digest(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def value_digest(value: Any) -> str:
    """The digest of JSON-able data, independent of key order."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HashCache:
    """path -> (size, mtime_ns, sha256), kept in a JSON file; `save` writes it only when it changed."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        self.changed = False
        self.bytes_read = 0
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                data = {}  # a cache is disposable: a broken one is rebuilt, never an error
            if data.get("version") == CACHE_VERSION:
                self.entries = data.get("files", {})

    def file_digest(self, path: Path) -> str:
        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        cached = self.entries.get(key)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2]
        digest = stream_digest(path)
        self.bytes_read += stat.st_size
        self.entries[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self.changed = True
        return digest

    def digest(self, path: Path) -> str:
        """A file's digest; a folder's is the digest of its files' relative paths and digests."""
        path = Path(path)
        if path.is_file():
            return self.file_digest(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            return value_digest([[p.relative_to(path).as_posix(), self.file_digest(p)] for p in files])
        return "missing"

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        # entries of files that are gone would only grow the cache
        live = {key: value for key, value in self.entries.items() if os.path.exists(key)}
        atomic_write_json(self.path, {"version": CACHE_VERSION, "files": live}, indent=None)
        self.changed = False
