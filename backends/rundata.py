"""A run's dataset: the user's rows, those with an answer to learn from, written in the backend's
own format under the run's data/ folder and registered there (each backend unit's registration)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from stylewrap.backends.base import TableBackend
from stylewrap.config import StylewrapConfig
from stylewrap.errors import ConfigError, DataError, InputError, Location

VAL_SUFFIX = "_val"


def trainable(record) -> bool:
    """A row teaches something only if some assistant turn has text."""
    return any(m.get("role") == "assistant" and str(m.get("content") or "").strip() for m in record.messages)


# a data file on the hub rather than on disk: OWNER/NAME, as ModelScope names datasets
HUB_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt")


def hub_dataset_id(config: StylewrapConfig) -> str | None:
    """`data.train_file` when it names a hub dataset (`swift/classical_chinese_translate`) rather
    than a file: the backend downloads it itself."""
    value = config.data.train_file
    if not value or not HUB_DATASET.match(value) or value.lower().endswith(DATA_SUFFIXES):
        return None
    local = config.resolve_path(value)
    return None if local is not None and local.exists() else value


@dataclass
class RowCount:
    read: int = 0
    kept: int = 0
    longer: int = 0          # rows over data.max_tokens
    dropped_long: int = 0    # of those, dropped (data.overlength: drop)


def row_tokens(record, count: Callable[[list[str]], list[int]]) -> int:
    """A row's tokens with the chat template's markers around each message (as autotune counts)."""
    from stylewrap.backends.autotune import TOKENS_PER_MESSAGE, TOKENS_PER_ROW

    texts = [str(m.get("content") or "") for m in record.messages]
    return sum(count(texts)) + TOKENS_PER_MESSAGE * len(texts) + TOKENS_PER_ROW


def token_counter(model: str | None) -> tuple[Callable[[list[str]], list[int]], str]:
    """(counter, what it counts with): the model's tokenizer.json, else UTF-8 bytes (an upper bound)."""
    from stylewrap.adapters.stats import load_token_counter
    from stylewrap.backends.modelinfo import model_folder

    folder = model_folder(model) if model else None
    if folder is not None and (folder / "tokenizer.json").is_file():
        try:
            return load_token_counter(folder), f"the tokenizer of {folder}"
        except InputError:
            pass
    return (lambda texts: [len(text.encode("utf-8")) for text in texts]), "UTF-8 bytes (no local tokenizer: an upper bound)"


def _model_path(config: StylewrapConfig) -> str | None:
    local = config.resolve_path(config.train.model)
    return str(local) if local is not None and local.exists() else config.train.model


def overlength_notice(config: StylewrapConfig, source: Path) -> str | None:
    """How many rows each data.overlength choice would cut or leave out, counted before a run."""
    from stylewrap.adapters import detect_format, read_records

    max_tokens = config.data.max_tokens
    if not max_tokens or not source.is_file():
        return None
    counter, counted_with = token_counter(_model_path(config))
    rows = [row_tokens(record, counter) for record in read_records(source, config.data.format or detect_format(source))]
    longer = sum(1 for tokens in rows if tokens > max_tokens)
    chosen = config.data.overlength
    return (f"data.max_tokens {max_tokens} (counted with {counted_with}): {longer:,} of {len(rows):,} rows are longer; "
            f"truncate cuts them and drops 0, drop leaves them out and trains on {len(rows) - longer:,} "
            f"(data.overlength: {chosen})")


def _trainable_rows(records: Iterable, count: RowCount, max_tokens: int | None = None, drop: bool = False,
                    counter: Callable | None = None) -> Iterator:
    for record in records:
        count.read += 1
        if not trainable(record):
            continue
        if max_tokens and row_tokens(record, counter) > max_tokens:
            count.longer += 1
            if drop:
                count.dropped_long += 1
                continue
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
    max_tokens, drop = config.data.max_tokens, config.data.overlength == "drop"
    counter, counted_with = token_counter(_model_path(config)) if max_tokens else (None, None)
    rows = list(_trainable_rows(read_records(source, fmt), count, max_tokens, drop, counter))
    if count.kept == 0:
        # ms-swift would die later with ZeroDivisionError; llamafactory with an empty-dataset error
        why = (f"all {count.dropped_long} rows with an answer are longer than data.max_tokens {max_tokens}"
               if count.dropped_long else f"none of the {count.read} rows has an assistant answer to train on")
        raise DataError(why, location=Location(source),
                        hint="raise data.max_tokens or set data.overlength: truncate" if count.dropped_long
                        else "check the file's format and fields")
    if with_added:
        from stylewrap.backends.mixing import check_row_systems

        check_row_systems(rows, source, config)
    added = added_rows(config, count.kept) if with_added else {}
    backend.register_dataset([*rows, *(row for extra in added.values() for row in extra)], data_dir, name)
    dataset = {"name": name, "path": str(source), "format": fmt, "rows": count.kept, "skipped_rows": count.read - count.kept}
    if added:
        dataset["added"] = {source_name: len(extra) for source_name, extra in added.items()}
    if with_added and config.data.mix:
        # which general data went in at which ratio: eval's report shows it beside the general probes
        from stylewrap.backends.mixing import source_name

        dataset["mix"] = [{"source": source_name(config, entry), "ratio": entry.ratio,
                           "rows": len(added.get(source_name(config, entry), []))} for entry in config.data.mix]
    if max_tokens:
        dataset["overlength"] = {"max_tokens": max_tokens, "policy": config.data.overlength, "longer": count.longer,
                                 "dropped": count.dropped_long, "counted_with": counted_with}
    return dataset


def added_rows(config: StylewrapConfig, style_rows: int) -> dict[str, list]:
    """source -> rows: `style.identity` self-cognition rows (when mixed) and each `data.mix` file."""
    from stylewrap.backends import mixing

    added: dict[str, list] = {}
    if config.style.identity is not None and config.style.identity.mix:
        added["identity"] = mixing.identity_rows(config)
    added.update(mixing.general_rows(config, style_rows))
    return added


def write_dataset(backend: TableBackend, config: StylewrapConfig, data_dir: Path, dataset_name: str) -> dict[str, Any]:
    """The run's training (data.train_file, or a hub dataset the backend downloads) and validation rows
    in the backend's format, registered in `data_dir` (the same signature as `preference.write_dataset`,
    a preference run's writer)."""
    hub_id = hub_dataset_id(config)
    if hub_id:
        backend.register_hub_dataset(data_dir, dataset_name, hub_id, config.data.format)
        return {"name": dataset_name, "source": hub_id, "hub_repo": hub_id, "rows": None,
                "registration": f"{data_dir.name}/", "note": f"downloaded by {backend.name} from the hub"}
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
