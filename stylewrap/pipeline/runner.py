"""Decide which stages run, run them, keep the lock file true at every moment.

A stage is skipped when its fingerprint (its config sections, the content of its input files, the
fingerprint of the stage before it, the stylewrap and backend versions) equals the one recorded
when it last finished, and what it left behind is still there. Anything else runs it — and every
stage after it. A stage that was running when the process died or was interrupted is resumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylewrap import __version__
from stylewrap.errors import InputError, StylewrapError
from stylewrap.pipeline.fingerprint import HashCache, value_digest
from stylewrap.pipeline.stages import STAGE_NAMES, STAGES, Stage, StageContext

STATE_DIR = ".stylewrap"                 # beside the config: the hash cache and the one-run-at-a-time lock
CACHE_FILE = f"{STATE_DIR}/hashes.json"


@dataclass
class Decision:
    stage: Stage
    action: str              # run | skip | off | outside (before --from's stages are kept, after --to not run)
    reason: str


@dataclass
class StageResult:
    name: str
    action: str              # ran | skipped | off | failed | interrupted | not run
    seconds: float | None = None
    figure: str | None = None
    reason: str | None = None


@dataclass
class PipelineResult:
    config_path: Path
    lock_path: Path
    stages: list[StageResult] = field(default_factory=list)
    summary_files: list[Path] = field(default_factory=list)
    dry_run: bool = False


def check_range(from_stage: str | None, to_stage: str | None, force: tuple[str, ...]) -> None:
    for value in (from_stage, to_stage, *force):
        if value is not None and value not in STAGE_NAMES:
            raise InputError(f"unknown stage {value!r}", hint=f"stages: {', '.join(STAGE_NAMES)}")
    if from_stage and to_stage and STAGE_NAMES.index(from_stage) > STAGE_NAMES.index(to_stage):
        raise InputError(f"--from {from_stage} comes after --to {to_stage}", hint=f"stage order: {' -> '.join(STAGE_NAMES)}")


def versions(stage: Stage, ctx: StageContext) -> dict[str, str]:
    found = {"stylewrap": __version__}
    if stage.uses_backend:
        from stylewrap.backends.base import get_backend

        backend = get_backend(ctx.config.train.backend, ctx.config)
        found[backend.name] = backend.version() or "not installed"
    return found


def stage_inputs(stage: Stage, ctx: StageContext, cache: HashCache, upstream: dict[str, str]) -> dict[str, Any]:
    """Everything the stage's result depends on, as it stands now."""
    config = {name: getattr(ctx.config, name).model_dump(mode="json") for name in stage.sections}
    files = {label: cache.digest(path) for label, path in stage.inputs(ctx).items()}
    return {"config": config, "files": files, "upstream": dict(upstream), "versions": versions(stage, ctx)}


_ABSENT = object()


def what_changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`train.learning_rate`, `data file`, `data re-ran`, `llamafactory 0.9.4 -> 0.9.5`."""
    changes = []
    for section, values in now.get("config", {}).items():
        old = before.get("config", {}).get(section, {})
        # a key only one side has counts too (a setting a newer stylewrap added, or one removed)
        changes += [f"{section}.{key}" for key in sorted(set(values) | set(old))
                    if values.get(key, _ABSENT) != old.get(key, _ABSENT)]
    changes += [label for label in now.get("files", {}) if now["files"][label] != before.get("files", {}).get(label)]
    changes += [f"{name} changed" for name in now.get("upstream", {}) if now["upstream"][name] != before.get("upstream", {}).get(name)]
    for name, version in now.get("versions", {}).items():
        old = before.get("versions", {}).get(name)
        if old != version:
            changes.append(f"{name} {old} -> {version}")
    return changes or ["inputs"]


def unchanged_parts(stage: Stage, inputs: dict[str, Any]) -> str:
    parts = ["config" if len(stage.sections) == 1 else f"{'/'.join(stage.sections)} config"]
    parts += list(inputs["files"]) + list(inputs["upstream"])
    return ", ".join(parts)


class Pipeline:
    def __init__(self, ctx: StageContext, *, from_stage: str | None = None, to_stage: str | None = None,
                 force: tuple[str, ...] = (), dry_run: bool = False):
        check_range(from_stage, to_stage, force)
        self.ctx = ctx
        self.from_stage, self.to_stage, self.force, self.dry_run = from_stage, to_stage, set(force), dry_run
        self.cache = HashCache(ctx.root / CACHE_FILE)

    # ------------------------------------------------------------ deciding

    def _in_range(self, name: str) -> str | None:
        index = STAGE_NAMES.index(name)
        if self.from_stage and index < STAGE_NAMES.index(self.from_stage):
            return f"before --from {self.from_stage}"
        if self.to_stage and index > STAGE_NAMES.index(self.to_stage):
            return f"after --to {self.to_stage}"
        return None

    def decide(self) -> list[Decision]:
        """What each stage would do now, with the reason in a few words (what --dry-run prints)."""
        decisions: list[Decision] = []
        upstream: dict[str, str] = {}
        rerun_from: str | None = None
        for stage in STAGES:
            off = stage.off_because(self.ctx.config)
            if off is not None:
                decisions.append(Decision(stage, "off", off))
                continue
            record = self.ctx.lock.stages.get(stage.name)
            inputs = stage_inputs(stage, self.ctx, self.cache, upstream) if rerun_from is None else None
            fingerprint = value_digest(inputs) if inputs is not None else None
            outside = self._in_range(stage.name)
            if outside:
                # stages before --from keep what they have; stages after --to wait for a later run
                decisions.append(Decision(stage, "outside", outside))
                if outside.startswith("after"):
                    continue
            elif rerun_from is not None:
                decisions.append(Decision(stage, "run", f"after {rerun_from}"))
            elif stage.name in self.force or stage.name == self.from_stage:
                decisions.append(Decision(stage, "run", "--force" if stage.name in self.force else "--from"))
            elif record is None:
                decisions.append(Decision(stage, "run", "never ran"))
            elif record.status != "done":
                how = "resuming" if record.fingerprint == fingerprint else "inputs changed since it stopped"
                state = {"failed": "it failed", "interrupted": "it was interrupted"}.get(record.status, "it was running")
                decisions.append(Decision(stage, "run", f"{how}: {state} at {record.started_at}"))
            elif record.fingerprint != fingerprint:
                decisions.append(Decision(stage, "run", f"changed: {', '.join(what_changed(record.inputs, inputs))}"))
            elif (gone := stage.missing(self.ctx)) is not None:
                decisions.append(Decision(stage, "run", gone))
            else:
                decisions.append(Decision(stage, "skip", f"up to date ({unchanged_parts(stage, inputs)} unchanged)"))
            if decisions[-1].action == "run":
                rerun_from = rerun_from or stage.name
            upstream = {stage.name: record.fingerprint if decisions[-1].action != "run" and record else fingerprint or ""}
        return decisions

    # ------------------------------------------------------------ running

    def run(self, result: PipelineResult) -> None:
        decisions = self.decide()
        if self.dry_run:
            for decision in decisions:
                self.ctx.report(f"{decision.stage.name}: {describe(decision)}")
                result.stages.append(StageResult(decision.stage.name, "would run" if decision.action == "run" else
                                                 plain_action(decision.action), reason=decision.reason))
            return
        self.cache.save()
        upstream: dict[str, str] = {}
        for position, decision in enumerate(decisions):
            stage, record = decision.stage, self.ctx.lock.stages.get(decision.stage.name)
            if decision.action != "run":
                self.ctx.report(f"{stage.name}: {describe(decision)}")
                result.stages.append(StageResult(stage.name, plain_action(decision.action), reason=decision.reason,
                                                 figure=record.figure if record and decision.action == "skip" else None))
                if record is not None and decision.action != "off":
                    upstream = {stage.name: record.fingerprint}
                continue
            try:
                upstream = {stage.name: self._run_stage(stage, decision, upstream, result)}
            except BaseException:
                for later in decisions[position + 1:]:
                    result.stages.append(StageResult(later.stage.name, "not run" if later.action == "run" else
                                                     plain_action(later.action), reason=later.reason))
                raise

    def _run_stage(self, stage: Stage, decision: Decision, upstream: dict[str, str], result: PipelineResult) -> str:
        # the inputs as they are now that the stages before it have run
        inputs = stage_inputs(stage, self.ctx, self.cache, upstream)
        fingerprint = value_digest(inputs)
        self.cache.save()
        lock = self.ctx.lock
        lock.begin(stage.name, fingerprint, inputs)
        self.ctx.report(f"{stage.name}: running ({decision.reason})")
        started = time.monotonic()
        try:
            outcome = stage.run(self.ctx)
        except KeyboardInterrupt:
            self._stopped(stage, "interrupted", started, "interrupted", result)
            raise
        except StylewrapError as exc:
            self._stopped(stage, "failed", started, exc.one_line(), result)
            raise
        except BaseException as exc:
            self._stopped(stage, "failed", started, f"{type(exc).__name__}: {exc}", result)
            raise
        seconds = time.monotonic() - started
        lock.end(stage.name, "done", seconds=seconds, outputs=outcome.outputs, figure=outcome.figure)
        self.ctx.report(f"{stage.name}: done in {seconds:.1f} s: {outcome.figure}")
        result.stages.append(StageResult(stage.name, "ran", seconds, outcome.figure, decision.reason))
        return fingerprint

    def _stopped(self, stage: Stage, status: str, started: float, error: str, result: PipelineResult) -> None:
        seconds = time.monotonic() - started
        self.ctx.lock.end(stage.name, status, seconds=seconds, error=error)
        self.ctx.report(f"{stage.name}: {status} after {seconds:.1f} s")
        result.stages.append(StageResult(stage.name, status, seconds, reason=error))


def plain_action(action: str) -> str:
    return {"skip": "skipped", "off": "off", "outside": "not run", "run": "ran"}[action]


def describe(decision: Decision) -> str:
    if decision.action == "run":
        return f"will run ({decision.reason})"
    if decision.action == "skip":
        return decision.reason
    if decision.action == "off":
        return f"off ({decision.reason})"
    return f"not run ({decision.reason})"

