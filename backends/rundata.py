"""A run's dataset: the user's rows, those with an answer to learn from, written in the backend's
own format under the run's data/ folder and registered there (each backend unit's registration)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from stylewrap.backends.base import TableBackend
from stylewrap.config import StylewrapConfig
from stylewrap.errors import ConfigError, DataError, InputError, Location

VAL_SUFFIX = "_val"


def trainable(record) -> bool:
    """A row teaches something only if some assistant turn has text."""
    return any(m.get("role") == "assistant" and str(m.get("content") or "").strip() for m in record.messages)


@dataclass
class RowCount:
    read: int = 0
    kept: int = 0


def _trainable_rows(records: Iterable, count: RowCount) -> Iterator:
    for record in records:
        count.read += 1
        if trainable(record):
            count.kept += 1
            yield record


def convert_rows(backend: TableBackend, config: StylewrapConfig, data_dir: Path, source: Path, name: str,
                 field: str, *, with_added: bool = False) -> dict[str, Any]:
    """Convert `source` to the backend's format in `data_dir` and register it there as `name`;
    `with_added`: the identity and general rows (`mixing`) follow the style rows."""
    from stylewrap.adapters import detect_format, read_records

    if not source.is_file():
        raise InputError("data file not found", location=Location(source, field=field))
    fmt = config.data.format or detect_format(source)
    count = RowCount()
    rows = list(_trainable_rows(read_records(source, fmt), count))
    if count.kept == 0:
        # ms-swift would die later with ZeroDivisionError; llamafactory with an empty-dataset error
        raise DataError(f"none of the {count.read} rows has an assistant answer to train on",
                        location=Location(source), hint="check the file's format and fields")
    added = added_rows(config, count.kept) if with_added else {}
    backend.register_dataset([*rows, *(row for extra in added.values() for row in extra)], data_dir, name)
    summary = {"name": name, "path": str(source), "format": fmt, "rows": count.kept, "skipped_rows": count.read - count.kept}
    if added:
        summary["added"] = {source_name: len(extra) for source_name, extra in added.items()}
    return summary


def added_rows(config: StylewrapConfig, style_rows: int) -> dict[str, list]:
    """source -> rows: `style.identity` self-cognition rows (when mixed) and each `data.mix` file."""
    from stylewrap.backends import mixing

    added: dict[str, list] = {}
    if config.style.identity is not None and config.style.identity.mix:
        added["identity"] = mixing.identity_rows(config)
    added.update(mixing.general_rows(config, style_rows))
    return added


def write_dataset(backend: TableBackend, config: StylewrapConfig, data_dir: Path, dataset_name: str) -> dict[str, Any]:
    """The run's training (data.train_file) and validation rows in the backend's format, registered in
    `data_dir` (the same signature as `preference.write_dataset`, a preference run's writer)."""
    train_file = config.resolve_path(config.data.train_file)
    if train_file is None:
        raise ConfigError("no training data", location=Location(field="data.train_file"),
                          hint="set data.train_file (any format `stylewrap data` reads)")
    dataset = convert_rows(backend, config, data_dir, train_file, dataset_name, "data.train_file", with_added=True)
    dataset.update({"source": str(train_file), "registration": f"{data_dir.name}/", "backend_format": backend.data_format})
    val_file = config.resolve_path(config.data.val_file)
    if val_file is not None:
        dataset["validation"] = convert_rows(backend, config, data_dir, val_file, f"{dataset_name}{VAL_SUFFIX}",
                                             "data.val_file")
    return dataset
