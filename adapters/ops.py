"""Whole-file operations: convert, dedup, split and sample. All streaming, all writes atomic."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from stylewrap.adapters.files import detect_format, format_named, read_records, write_records
from stylewrap.adapters.progress import with_progress
from stylewrap.adapters.records import Record
from stylewrap.adapters.stats import record_key
from stylewrap.errors import InputError


def _read(path: Path, fmt: str | None, label: str) -> tuple[str, Iterator[Record]]:
    fmt = fmt or detect_format(path)
    return fmt, with_progress(read_records(path, fmt), f"{label} {path.name}")


def convert(path: str | Path, output: str | Path, to: str, fmt: str | None = None) -> int:
    """Rewrite `path` as format `to` at `output`; returns rows written."""
    path, output = Path(path), Path(output)
    format_named(to)
    _check_distinct(path, output)
    _, records = _read(path, fmt, "converting")
    return write_records(records, output, to)


def _check_distinct(source: Path, *outputs: Path) -> None:
    for output in outputs:
        if output.exists() and output.resolve() == source.resolve():
            raise InputError(f"{output}: the output would overwrite the input", hint="pick another output path")


@dataclass
class DedupResult:
    rows: int
    kept: int

    @property
    def dropped(self) -> int:
        return self.rows - self.kept


def dedup(
    path: str | Path, output: str | Path, fmt: str | None = None, *, to: str | None = None, normalized: bool = False, prompt_only: bool = False
) -> DedupResult:
    """Keep the first of each group of equal records (or equal prompts), in file order.

    `normalized` compares text after NFKC, case folding and dropping whitespace/punctuation.
    """
    path, output = Path(path), Path(output)
    _check_distinct(path, output)
    fmt, records = _read(path, fmt, "deduplicating")
    seen: set[int] = set()
    counts = {"rows": 0}

    def unique() -> Iterator[Record]:
        for record in records:
            counts["rows"] += 1
            key = record_key(record, normalized=normalized, prompt_only=prompt_only)
            if key not in seen:
                seen.add(key)
                yield record

    kept = write_records(unique(), output, to or fmt)
    return DedupResult(counts["rows"], kept)


def split(
    path: str | Path, train: str | Path, val: str | Path, *, val_size: float, seed: int = 0, fmt: str | None = None, to: str | None = None
) -> tuple[int, int]:
    """A seeded train/val split; `val_size` is a fraction (<1) or a row count (>=1). Two streaming passes."""
    path, train, val = Path(path), Path(train), Path(val)
    _check_distinct(path, train, val)
    fmt = fmt or detect_format(path)
    total = sum(1 for _ in _read(path, fmt, "counting")[1])
    wanted = int(val_size) if val_size >= 1 else round(total * val_size)
    if val_size <= 0 or wanted >= total:
        raise InputError(f"val size {val_size} leaves no training rows out of {total}", hint="use a fraction in (0, 1) or a smaller count")
    val_rows = set(random.Random(seed).sample(range(total), wanted))
    # the val file is written first while train rows stream into a second pass
    write_records((r for i, r in enumerate(read_records(path, fmt)) if i in val_rows), val, to or fmt)
    train_count = write_records((r for i, r in enumerate(_read(path, fmt, "splitting")[1]) if i not in val_rows), train, to or fmt)
    return train_count, wanted


def sample(path: str | Path, output: str | Path, n: int, *, seed: int = 0, fmt: str | None = None, to: str | None = None) -> int:
    """`n` rows chosen uniformly with a seeded reservoir, written in their original order."""
    path, output = Path(path), Path(output)
    _check_distinct(path, output)
    if n < 1:
        raise InputError(f"sample size must be at least 1, got {n}")
    fmt, records = _read(path, fmt, "sampling")
    rng = random.Random(seed)
    reservoir: list[tuple[int, Record]] = []
    for index, record in enumerate(records):
        if index < n:
            reservoir.append((index, record))
        else:
            slot = rng.randrange(index + 1)
            if slot < n:
                reservoir[slot] = (index, record)
    reservoir.sort(key=lambda pair: pair[0])
    return write_records((record for _, record in reservoir), output, to or fmt)
