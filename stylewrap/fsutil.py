"""Atomic file writes: a temp file in the same folder, fsync, then rename.

A crash or Ctrl-C leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from stylewrap.errors import InputError, Location


def new_file_mode(*, writable_by_others: bool = True) -> int:
    """The mode a new file gets: 0666 less the umask (and less group/other write when asked)."""
    mode = 0o666 & ~_umask()
    return mode if writable_by_others else mode & ~0o022


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (a few instructions apart)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", *,
                  new_mode: int | None = None, start_from: str | os.PathLike | None = None) -> Iterator[IO]:
    """Write `path` whole or not at all. A symlink is written through (the file it points to is
    replaced, the link stays); a file being replaced keeps its permissions and a new one gets the
    usual 0666 less the umask (not mkstemp's 0600, which a backend running as another user cannot
    read); a file without its owner's write permission is refused, not silently replaced.

    `start_from` (binary modes): a scratch file the new file begins with; what is written goes after
    it. On the target's file system it becomes the new file (renamed: a big first part is not copied);
    elsewhere it is copied. Either way the caller must not use it afterwards.
    """
    target = Path(os.path.realpath(path))
    created = _make_folders(target.parent)
    existing = target.stat() if target.exists() else None
    if existing is not None and not existing.st_mode & stat.S_IWUSR:
        raise InputError(f"read-only (mode {stat.filemode(existing.st_mode)}); not replaced", location=Location(path),
                         hint=f"chmod u+w {path} to let stylewrap rewrite it")
    adopt = start_from is not None and os.stat(start_from).st_dev == os.stat(target.parent).st_dev
    if adopt:
        tmp_name = os.fspath(start_from)
        fd = os.open(tmp_name, os.O_WRONLY)  # not O_APPEND: copy_file_range refuses to write to that
        os.lseek(fd, 0, os.SEEK_END)
    else:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    if "b" in mode:
        encoding = None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            if start_from is not None and not adopt:
                with open(start_from, "rb") as first:
                    shutil.copyfileobj(first, handle, 1 << 20)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, existing.st_mode & 0o7777 if existing is not None else new_mode or new_file_mode())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        for folder in created:  # a failed write leaves no empty folders behind either
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _make_folders(folder: Path) -> list[Path]:
    """mkdir -p `folder`; the folders it made, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(exist_ok=True)
    return missing


def atomic_write_text(path: str | os.PathLike, text: str, *, new_mode: int | None = None) -> Path:
    with atomic_writer(path, "w", new_mode=new_mode) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


@contextlib.contextmanager
def held_exclusively(lock_file: Path, busy: str, *, location: Location, hint: str) -> Iterator[None]:
    """One holder at a time (`filelock`, released when the holder dies); a second is refused at once
    with `busy` rather than left waiting."""
    import filelock

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise InputError(busy, location=location, hint=hint) from None
    try:
        yield
    finally:
        lock.release()
