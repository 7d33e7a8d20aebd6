"""`stylewrap.lock`: what each stage last ran on and what it left, as plain YAML next to the config.

Written atomically (a crash leaves the old file or the new one) before a stage starts (status
`running`, the inputs it runs on) and when it ends (`done`, `failed` or `interrupted`, its
outputs and key figure), so the next `stylewrap run` knows what is up to date and what to resume.
Deleting it makes every stage run again.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml

from stylewrap.errors import ConfigError, Location
from stylewrap.fsutil import atomic_write_text, held_exclusively
from stylewrap.secrets import redact

LOCK_FILENAME = "stylewrap.lock"
LOCK_VERSION = 1
HEADER = ("# Written by `stylewrap run`: the inputs each stage last ran on and what it produced.\n"
          "# Readable and diffable; delete it (or pass --force STAGE) to run stages again.\n")


@dataclass
class StageRecord:
    status: str                                   # running | done | failed | interrupted
    fingerprint: str
    inputs: dict[str, Any] = field(default_factory=dict)   # config sections, file digests, upstream, versions
    outputs: dict[str, Any] = field(default_factory=dict)  # paths (relative to the config's folder when inside it)
    figure: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    error: str | None = None


class Lock:
    def __init__(self, path: Path, stages: dict[str, StageRecord] | None = None):
        self.path = path
        self.stages: dict[str, StageRecord] = stages or {}

    @classmethod
    def load(cls, path: Path) -> "Lock":
        if not path.is_file():
            return cls(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError("not valid YAML", location=Location(path, mark.line + 1 if mark else None),
                              hint="delete it and every stage runs again") from None
        if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
            raise ConfigError(f"not a version {LOCK_VERSION} lock file", location=Location(path, field="version"),
                              hint="delete it and every stage runs again")
        stages = {}
        known = set(StageRecord.__dataclass_fields__)
        for name, record in (data.get("stages") or {}).items():
            if not isinstance(record, dict) or not {"status", "fingerprint"} <= set(record) or set(record) - known:
                raise ConfigError("malformed stage record", location=Location(path, field=f"stages.{name}"),
                                  hint="delete it and every stage runs again")
            stages[name] = StageRecord(**record)
        return cls(path, stages)

    def save(self) -> None:
        body = {"version": LOCK_VERSION, "stages": {name: _dropped_nones(asdict(r)) for name, r in self.stages.items()}}
        # config values and error messages land here: a secret a user pasted into one never does
        atomic_write_text(self.path, redact(HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)))

    def begin(self, stage: str, fingerprint: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> StageRecord:
        previous = self.stages.get(stage)
        # an interrupted stage keeps the outputs it had (train: its run directory, to resume from)
        kept = dict(previous.outputs) if previous and previous.status != "done" and previous.fingerprint == fingerprint else {}
        record = StageRecord(status="running", fingerprint=fingerprint, inputs=inputs, outputs={**kept, **(outputs or {})},
                             started_at=now())
        self.stages[stage] = record
        self.save()
        return record

    def note(self, stage: str, **outputs: Any) -> None:
        """Record an output as soon as it is known (train's run directory, before the backend starts)."""
        self.stages[stage].outputs.update(outputs)
        self.save()

    def end(self, stage: str, status: str, *, seconds: float, outputs: dict[str, Any] | None = None,
            figure: str | None = None, error: str | None = None) -> None:
        record = self.stages[stage]
        record.status, record.seconds, record.finished_at = status, round(seconds, 1), now()
        record.outputs.update(outputs or {})
        record.figure, record.error = figure, error
        self.save()


@contextlib.contextmanager
def one_run_at_a_time(state_dir: Path, config_path: Path) -> Iterator[None]:
    """Two runs on one project would train twice and overwrite each other's lock records."""
    with held_exclusively(state_dir / "run.lock", "another `stylewrap run` is running on this project",
                          location=Location(config_path), hint="wait for it to finish"):
        yield


def _dropped_nones(record: dict) -> dict:
    return {key: value for key, value in record.items() if value is not None}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
