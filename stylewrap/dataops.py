"""What `stylewrap data` (and `datagen --register`) do on top of the adapters: register a file
with any registered backend, and a dataset's statistics as a text report and an optional HTML page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stylewrap.errors import InputError


@dataclass(frozen=True)
class Registration:
    info: Path          # the registry file written: dataset_info.json or custom_dataset_info.json
    how_to_train: str


def registration_backend(name: str):
    """The backend whose registry a dataset goes into; a one-line error for a name none has."""
    from stylewrap.backends.base import get_backend
    from stylewrap.backends.registry import backend_names

    try:
        return get_backend(name)
    except InputError:
        raise InputError(f"cannot register a dataset with backend {name!r}",
                         hint=f"one of: {', '.join(backend_names())}") from None


def register_dataset(backend: str, dataset_dir: Path, name: str, path: Path, fmt: str | None = None, *,
                     force: bool = False) -> Registration:
    """Merge `name` -> `path` into the backend's registry file in `dataset_dir`, atomically."""
    chosen = registration_backend(backend)
    info = chosen.write_registration(Path(dataset_dir), name, Path(path), fmt, force=force)
    return Registration(info, chosen.registration_hint.format(dataset_dir=dataset_dir, info=info, name=name))


def dataset_report(path: Path, fmt: str | None = None, *, tokenizer: Path | None = None, html_path: Path | None = None) -> dict:
    """The numbers of `stylewrap data stats` (tokens per role with a tokenizer), also written
    as an HTML page with the length histogram when `html_path` is given."""
    from stylewrap.adapters.stats import dataset_stats, load_token_counter, stats_html
    from stylewrap.fsutil import atomic_write_text

    result = dataset_stats(path, fmt, count_tokens=load_token_counter(tokenizer) if tokenizer else None)
    if html_path:
        atomic_write_text(html_path, stats_html(result))
    return result.as_dict()


def report_text(numbers: dict) -> str:
    """`dataset_report`'s numbers as the terminal table and histogram."""
    lines = [
        f"{numbers['file']}: {numbers['format']}, {numbers['rows']} rows, {numbers['turns']} turns, "
        f"{numbers['rows_with_system']} with system, {numbers['rows_with_tools']} with tools",
        f"{'role':<14}{'messages':>10}{'chars':>12}{'mean':>9}{'max':>8}{'tokens':>12}",
    ]
    for role, s in numbers["roles"].items():
        tokens = "-" if s["tokens"] is None else s["tokens"]
        lines.append(f"{role:<14}{s['messages']:>10}{s['chars']:>12}{s['mean_chars']:>9}{s['max_chars']:>8}{tokens:>12}")
    dup = numbers["duplicates"]
    lines.append(f"duplicates: {dup['exact']} exact, {dup['normalized']} normalized, {dup['prompt']} repeated prompts")
    peak = max(numbers["length_histogram_chars"].values(), default=1) or 1
    lines.append("conversation length (chars):")
    for label, count in numbers["length_histogram_chars"].items():
        lines.append(f"  {label:>13} {count:>8} {'#' * round(40 * count / peak)}")
    return "\n".join(lines)
