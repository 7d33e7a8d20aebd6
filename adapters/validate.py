"""Check every row of a dataset file; optionally split it into the good rows and a rejects file."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from stylewrap.adapters.files import Problem, RowSink, detect_format, join_fragments, output_container, scan_lines, scan_rows
from stylewrap.adapters.parallel import line_shifts, map_slices, workers_for
from stylewrap.adapters.jsonstream import dump_row
from stylewrap.adapters.progress import with_progress
from stylewrap.adapters.records import Record
from stylewrap.fsutil import atomic_writer

# Problems kept for printing; all of them are counted.
MAX_LISTED = 1000


@dataclass
class ValidationReport:
    path: Path
    fmt: str
    rows: int = 0
    valid: int = 0
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    good_path: Path | None = None
    rejects_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)
        self.kinds[problem.message.split(":")[0].split(" (")[0]] += 1

    def summary(self) -> str:
        text = f"{self.path}: {self.fmt}, {self.rows} rows, {self.valid} valid, {self.problem_count} problems"
        if self.good_path:
            text += f"; wrote {self.valid} good rows to {self.good_path} and the rejects to {self.rejects_path}"
        return text


def default_outputs(path: Path) -> tuple[Path, Path]:
    return path.with_name(f"{path.stem}.valid{path.suffix}"), path.with_name(f"{path.stem}.rejects.jsonl")


def validate(
    path: str | Path,
    fmt: str | None = None,
    *,
    drop_invalid: bool = False,
    output: str | Path | None = None,
    rejects: str | Path | None = None,
    **options,
) -> ValidationReport:
    """Every problem of every row of `path` (file:line:field), with duplicate keys checked too.

    With `drop_invalid`, the rows that pass are written unchanged to `output` and each rejected
    row (with its problem) to `rejects`; both atomically, both JSON Lines unless `output` ends in .json.
    """
    path = Path(path)
    report = ValidationReport(path, fmt or detect_format(path))
    if drop_invalid:
        good_default, rejects_default = default_outputs(path)
        report.good_path = Path(output) if output else good_default
        report.rejects_path = Path(rejects) if rejects else rejects_default
    workers = workers_for(path)
    if workers > 1:
        return _validate_in_slices(report, workers, options)
    rows = with_progress(scan_rows(path, report.fmt, **options), f"validating {path.name}")
    if not drop_invalid:
        check_rows(rows, report)
        return report
    with contextlib.ExitStack() as stack:
        good = RowSink(stack.enter_context(atomic_writer(report.good_path, "wb")), output_container(report.good_path) == "array")
        bad = RowSink(stack.enter_context(atomic_writer(report.rejects_path, "wb")), False)
        check_rows(rows, report, good, bad)
        good.close()
        bad.close()
    return report


def check_rows(rows: Iterable[Any], report: ValidationReport, good: RowSink | None = None, bad: RowSink | None = None) -> None:
    """Count each row into `report`; with sinks, good rows go unchanged to `good`, problems to `bad`.

    `rows` are (RawRow, Record | Problem) pairs, or without sinks also lists of typed rows that
    `files.scan_lines` proved valid (counted, nothing else to do for them).
    """
    proved = 0
    for entry in rows:
        if type(entry) is list:
            proved += len(entry)
            continue
        raw, item = entry
        _count(report, item)
        if good is None:
            continue
        if isinstance(item, Record):
            good.add(dump_row(raw.value))
        else:
            bad.add(dump_row({"line": item.line, "field": item.field, "error": item.message, "row": raw.value}))
    report.rows += proved
    report.valid += proved


def _count(report: ValidationReport, item: Record | Problem) -> None:
    if isinstance(item, Problem):
        report.add(item)
        if item.field != "BOM":
            report.rows += 1
    else:
        report.rows += 1
        report.valid += 1


def _validate_in_slices(report: ValidationReport, workers: int, options: dict) -> ValidationReport:
    drop_invalid = report.good_path is not None
    as_array = drop_invalid and output_container(report.good_path) == "array"
    parts_home = report.good_path.parent if drop_invalid else None
    if parts_home is not None:
        parts_home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stylewrap-validate.", dir=parts_home) as parts_dir:
        slices = map_slices(_validate_slice, report.path, workers, Path(parts_dir), report.fmt, drop_invalid, as_array, options)
        has_problems = any(piece.result[0].problem_count for piece in slices[1:])
        shifts = line_shifts(report.path, slices) if has_problems else [0] * len(slices)
        for piece, shift in zip(slices, shifts):
            part_report = piece.result[0]
            report.rows += part_report.rows
            report.valid += part_report.valid
            report.problem_count += part_report.problem_count
            listed = part_report.problems[: MAX_LISTED - len(report.problems)]
            report.problems += [replace(problem, line=problem.line + shift) for problem in listed]
            report.kinds += part_report.kinds
        if drop_invalid:
            with atomic_writer(report.good_path, "wb") as handle:
                join_fragments(handle, [(piece.part, piece.result[0].valid) for piece in slices], as_array)
            with atomic_writer(report.rejects_path, "wb") as handle:
                for piece, shift in zip(slices, shifts):
                    _copy_rejects(Path(f"{piece.part}.rejects"), handle, shift)
    return report


def _validate_slice(path: str, byte_range: tuple[int, int], part: str, fmt: str, drop_invalid: bool, as_array: bool, options: dict):
    """Worker: check one slice; with `drop_invalid` its good rows go to `part`, rejects to `part`.rejects."""
    report = ValidationReport(Path(path), fmt)
    if not drop_invalid:
        check_rows(scan_lines(path, fmt, byte_range, **options), report)
        return report, 0
    # the good rows are written as parsed: the precise path keeps each row's value
    rows = scan_rows(path, fmt, line_range=(*byte_range, 1), **options)
    with open(part, "wb") as good_file, open(f"{part}.rejects", "wb") as bad_file:
        good, bad = RowSink(good_file, as_array, fragment=True), RowSink(bad_file, False, fragment=True)
        check_rows(rows, report, good, bad)
        good.close()
        bad.close()
    return report, bad.count


def _copy_rejects(source: Path, handle, shift: int) -> None:
    """Append a worker's rejects (lines numbered from its slice) with the file's line numbers."""
    with open(source, "rb") as rejects:
        if not shift:
            shutil.copyfileobj(rejects, handle, 1 << 20)
            return
        for encoded in rejects:
            reject = json.loads(encoded)
            reject["line"] += shift
            handle.write(dump_row(reject) + b"\n")
