"""Check every row of a dataset file; optionally split it into the good rows and a rejects file."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stylewrap.adapters.files import Problem, detect_format, output_container, scan_rows
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
    rows = with_progress(scan_rows(path, report.fmt, **options), f"validating {path.name}")
    if not drop_invalid:
        for raw, item in rows:
            _count(report, item)
        return report
    good_default, rejects_default = default_outputs(path)
    report.good_path = Path(output) if output else good_default
    report.rejects_path = Path(rejects) if rejects else rejects_default
    as_array = output_container(report.good_path) == "array"
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with contextlib.ExitStack() as stack:
        good = stack.enter_context(atomic_writer(report.good_path))
        bad = stack.enter_context(atomic_writer(report.rejects_path))
        good.write("[" if as_array else "")
        for raw, item in rows:
            _count(report, item)
            if isinstance(item, Record):
                separator = (",\n  " if report.valid > 1 else "\n  ") if as_array else ""
                good.write(separator + dumps(raw.value) + ("" if as_array else "\n"))
            else:
                bad.write(dumps({"line": item.line, "field": item.field, "error": item.message, "row": raw.value}) + "\n")
        good.write(("\n]\n" if report.valid else "]\n") if as_array else "")
    return report


def _count(report: ValidationReport, item: Record | Problem) -> None:
    if isinstance(item, Problem):
        report.add(item)
        if item.field != "BOM":
            report.rows += 1
    else:
        report.rows += 1
        report.valid += 1
