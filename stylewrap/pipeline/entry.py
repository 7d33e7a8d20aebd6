"""What `stylewrap run` and `stylewrap demo` call: load the config, run the stages, leave a
summary, and on failure the exact command that resumes."""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stylewrap.config import CONFIG_FILENAME, find_config, load_config
from stylewrap.errors import ConfigError, Location, StylewrapError
from stylewrap.pipeline.lock import LOCK_FILENAME, Lock, one_run_at_a_time
from stylewrap.pipeline.runner import STATE_DIR, Pipeline, PipelineResult
from stylewrap.pipeline.stages import StageContext
from stylewrap.pipeline.summary import write_summary

Report = Callable[[str], None]


@dataclass
class RunRequest:
    config_path: Path | None = None
    overrides: tuple[str, ...] = ()
    from_stage: str | None = None
    to_stage: str | None = None
    force: tuple[str, ...] = ()
    dry_run: bool = False
    show_progress: bool = True


class PipelineFailed(StylewrapError):
    """A stage failed or was interrupted: its error, then the command that picks up from there."""

    def __init__(self, stage: str, error: BaseException, resume: str):
        self.stage, self.resume = stage, resume
        self.exit_code = getattr(error, "exit_code", 1)
        reason = error.one_line() if isinstance(error, StylewrapError) else f"{type(error).__name__}: {error}"
        super().__init__(f"{stage} failed: {reason}")

    def one_line(self) -> str:
        return f"{self.message}\nresume with: {self.resume}"


def resume_command(config_path: Path, request: RunRequest) -> str:
    """The same run minus --from/--force: what finished is skipped, the stage that stopped resumes."""
    argv = ["stylewrap", "run", str(config_path)]
    for override in request.overrides:
        argv += ["--set", override]
    if request.to_stage:
        argv += ["--to", request.to_stage]
    return shlex.join(argv)


def locate_config(path: Path | None) -> Path:
    if path is not None and path.is_dir():
        path = path / CONFIG_FILENAME
    found = path or find_config()
    if found is None or not found.is_file():
        raise ConfigError("config file not found", location=Location(found or Path.cwd() / CONFIG_FILENAME),
                          hint="run `stylewrap init` or pass the path of a stylewrap.yaml")
    return found.resolve()


def run(request: RunRequest, *, console=None, report: Report = print) -> PipelineResult:
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    config_path = locate_config(request.config_path)
    config = load_config(config_path, request.overrides)
    lock = Lock.load(config_path.parent / LOCK_FILENAME)
    ctx = StageContext(config=config, config_path=config_path, overrides=tuple(request.overrides), lock=lock,
                       console=console, show_progress=request.show_progress, report=report)
    pipeline = Pipeline(ctx, from_stage=request.from_stage, to_stage=request.to_stage, force=request.force,
                        dry_run=request.dry_run)
    result = PipelineResult(config_path=config_path, lock_path=lock.path, dry_run=request.dry_run)
    try:
        with contextlib.nullcontext() if request.dry_run else one_run_at_a_time(ctx.root / STATE_DIR, config_path):
            pipeline.run(result)
    except KeyboardInterrupt:
        result.summary_files = write_summary(result, ctx.output_path("train", "run_dir"))
        report(f"resume with: {resume_command(config_path, request)}")
        raise
    except Exception as exc:
        stopped = next((s.name for s in result.stages if s.action == "failed"), None)
        if stopped is None:  # bad input found before any stage started: nothing to resume
            raise
        result.summary_files = write_summary(result, ctx.output_path("train", "run_dir"))
        raise PipelineFailed(stopped, exc, resume_command(config_path, request)) from exc
    if not request.dry_run:
        result.summary_files = write_summary(result, ctx.output_path("train", "run_dir"))
    return result


def demo_overrides(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """With an OpenAI-compatible endpoint in the environment the demo generates its data first."""
    environ = os.environ if environ is None else environ
    if not (environ.get("OPENAI_API_KEY") and environ.get("OPENAI_BASE_URL")):
        return ()
    return ("data.train_file=", "datagen.num_topics=4", "datagen.num_dialogues=40", "datagen.concurrency=8",
            "datagen.output_dir=data/generated")


def run_demo(directory: Path, *, backend: str, force: bool, port: int | None = None, setup_only: bool = False,
             console=None, report: Report = print) -> PipelineResult | None:
    """`stylewrap demo`: the demo project, then `stylewrap run` on it: the path a user takes."""
    from stylewrap.demo import prepare_demo

    report("tiny model: built once per machine, then reused by every project")
    project = prepare_demo(directory, backend=backend, force=force, on_build_line=lambda line: report(f"  {line}"))
    report(f"demo project: {project.directory}")
    if setup_only:
        return None
    overrides = (*demo_overrides(), *((f"deploy.port={port}",) if port else ()))
    return run(RunRequest(config_path=project.config_file, overrides=overrides), console=console, report=report)
