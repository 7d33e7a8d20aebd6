"""The stages of `stylewrap run`, as data: name, the config sections and files its fingerprint
covers, what it must leave behind to count as done, when it is on, and the library function it
calls — the same one its single-stage command calls (`calls` names it), so `run` composes the
commands and never copies them.

Heavy modules (backends, datagen's client) are imported inside the stage functions, so importing
this table for `stylewrap run --help` costs nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stylewrap.config import StylewrapConfig
from stylewrap.errors import ConfigError, DataError, Location, RunFailed
from stylewrap.pipeline.lock import Lock

PREPARED_TRAIN = "train.jsonl"
PREPARED_VAL = "val.jsonl"


@dataclass
class StageContext:
    """What a stage runs with: the user's config and flags, and the outputs upstream stages left."""

    config: StylewrapConfig
    config_path: Path
    overrides: tuple[str, ...]
    lock: Lock
    console: Any                        # rich Console on stderr: the stages' own progress bars
    show_progress: bool = True
    report: Callable[[str], None] = lambda _line: None

    @property
    def root(self) -> Path:
        return self.config_path.parent

    def output(self, stage: str, key: str) -> Any:
        record = self.lock.stages.get(stage)
        return record.outputs.get(key) if record else None

    def output_path(self, stage: str, key: str) -> Path | None:
        value = self.output(stage, key)
        return None if value is None else self.root / value

    def relative(self, path: Path) -> str:
        """Paths go into the lock relative to the config's folder, so the project can move."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def run_dir(self) -> Path:
        """The run the later stages use: the preference run on top of SFT when `train.then` asks for one."""
        tuned = self.output_path("prefer", "run_dir") if prefer_off(self.config) is None else None
        run_dir = tuned or self.output_path("train", "run_dir")
        if run_dir is None:
            raise RunFailed("no training run recorded in the lock file", hint="run the train stage first")
        return run_dir


@dataclass(frozen=True)
class Outcome:
    outputs: dict[str, Any]
    figure: str                          # the key figure of the summary: rows, final loss, URL, repo


@dataclass(frozen=True)
class Stage:
    name: str
    sections: tuple[str, ...]                                  # config sections in its fingerprint
    calls: str                                                 # the library function it composes
    run: Callable[[StageContext], Outcome]
    inputs: Callable[[StageContext], dict[str, Path]]          # label -> file or folder, hashed by content
    missing: Callable[[StageContext], str | None]              # what of its outputs is gone, None if all there
    off_because: Callable[[StylewrapConfig], str | None]       # None: the stage is on
    uses_backend: bool = True                                  # the backend's version is in its fingerprint


def _in_file(config: StylewrapConfig, section: str) -> bool:
    """The section is written in stylewrap.yaml (or set by env/--set), not just defaulted."""
    return section in config.model_fields_set


def _always(_config: StylewrapConfig) -> str | None:
    return None


def _no_inputs(_ctx: StageContext) -> dict[str, Path]:
    return {}


def _missing_file(path: Path | None) -> str | None:
    return None if path is not None and path.exists() else f"{path or 'its output'} is gone"


# ---------------------------------------------------------------- datagen


def datagen_off(config: StylewrapConfig) -> str | None:
    if not _in_file(config, "datagen"):
        return "no datagen section"
    if config.data.train_file:
        return "data.train_file is given"
    return None


def datagen_train_file(config: StylewrapConfig) -> Path:
    return config.resolve_path(config.datagen.output_dir) / config.datagen.train_file


def datagen_inputs(ctx: StageContext) -> dict[str, Path]:
    files = {}
    preset = Path(ctx.config.style.preset)
    if preset.suffix in (".yaml", ".yml"):
        files["style preset"] = ctx.config.resolve_path(ctx.config.style.preset)
    if ctx.config.datagen.topics_file:
        files["topics file"] = ctx.config.resolve_path(ctx.config.datagen.topics_file)
    return files


def run_datagen(ctx: StageContext) -> Outcome:
    from stylewrap.datagen.entry import exit_status
    from stylewrap.datagen.pipeline import DatagenJob, run_datagen as generate

    manifest = generate(ctx.config, DatagenJob(show_progress=ctx.show_progress))
    if exit_status(manifest):
        out = ctx.config.resolve_path(ctx.config.datagen.output_dir)
        raise RunFailed("datagen left items unfinished", location=Location(out / "errors.jsonl"),
                        hint="run again to retry them (finished items are kept)")
    rows = manifest["stages"].get("build", {}).get("done")
    return Outcome({"train_file": ctx.relative(datagen_train_file(ctx.config))}, f"{rows} rows generated")


# ---------------------------------------------------------------- data


def data_source(ctx: StageContext) -> Path:
    if datagen_off(ctx.config) is None:
        return datagen_train_file(ctx.config)
    source = ctx.config.resolve_path(ctx.config.data.train_file)
    if source is None:
        raise ConfigError("no training data", location=Location(ctx.config_path, field="data.train_file"),
                          hint="set data.train_file, or add a datagen section to generate it")
    return source


def data_inputs(ctx: StageContext) -> dict[str, Path]:
    files = {"data file": data_source(ctx)}
    if ctx.config.data.val_file:
        files["validation file"] = ctx.config.resolve_path(ctx.config.data.val_file)
    return files


def prepared_dir(config: StylewrapConfig) -> Path:
    return config.resolve_path(config.data.prepared_dir)


def run_data(ctx: StageContext) -> Outcome:
    """validate -> dedup -> split (or the given validation file) -> convert -> register, the
    functions behind `stylewrap data validate|dedup|split|convert|register`."""
    from stylewrap.adapters.ops import convert, dedup, split
    from stylewrap.adapters.validate import validate
    from stylewrap.backends.base import get_backend
    from stylewrap.dataops import register_dataset

    config = ctx.config
    source = data_source(ctx)
    if not source.is_file():
        raise DataError("data file not found", location=Location(source, field="data.train_file"))
    report = validate(source, config.data.format)
    if not report.ok:
        raise DataError(f"{report.problem_count} bad rows, the first: {report.problems[0]}",
                        hint=f"`stylewrap data validate {source}` lists them all")
    backend = get_backend(config.train.backend, config)
    fmt = backend.data_format
    out = prepared_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    train, val = out / PREPARED_TRAIN, out / PREPARED_VAL
    val_file = config.resolve_path(config.data.val_file)
    splitting = bool(config.data.val_size) and val_file is None
    unique = out / "deduplicated.jsonl" if splitting else train
    deduplicated = dedup(source, unique, report.fmt, to=fmt)
    val_rows = 0
    if splitting:
        _, val_rows = split(unique, train, val, val_size=config.data.val_size, seed=config.train.seed, fmt=fmt)
        unique.unlink()
    elif val_file is not None:
        val_rows = convert(val_file, val, fmt, config.data.format)
    else:
        val.unlink(missing_ok=True)
    name = config.data.dataset_name
    register_dataset(backend.name, out, name, train, fmt, force=True)
    outputs = {"train_file": ctx.relative(train), "format": fmt, "rows": deduplicated.kept - val_rows,
               "duplicates": deduplicated.dropped}
    if val_rows:
        register_dataset(backend.name, out, f"{name}_val", val, fmt, force=True)
        outputs.update(val_file=ctx.relative(val), val_rows=val_rows)
    figure = f"{outputs['rows']} rows ({deduplicated.dropped} duplicates dropped" + (f", {val_rows} for validation)" if val_rows else ")")
    return Outcome(outputs, figure)


def data_missing(ctx: StageContext) -> str | None:
    for key in ("train_file", "val_file"):
        if ctx.output("data", key) is not None and (gone := _missing_file(ctx.output_path("data", key))):
            return gone
    return None if ctx.output("data", "train_file") else "no prepared data recorded"


def prepared_overrides(ctx: StageContext) -> list[str]:
    """The training run reads what the data stage prepared, not the raw file."""
    val = ctx.output_path("data", "val_file")
    # JSON-quoted: a path is read as YAML and must stay the string it is
    return [f"data.train_file={json.dumps(str(ctx.output_path('data', 'train_file')))}",
            f"data.format={ctx.output('data', 'format')}", f"data.val_file={json.dumps(str(val)) if val else ''}",
            "data.val_size=0"]


# ---------------------------------------------------------------- train


def train_inputs(ctx: StageContext) -> dict[str, Path]:
    model = ctx.config.resolve_path(ctx.config.train.model) if ctx.config.train.model else None
    return {"base model": model} if model is not None and model.exists() else {}


def run_train(ctx: StageContext) -> Outcome:
    from stylewrap.backends.base import OUTPUT_DIR
    from stylewrap.backends.train import TrainRequest, execute, latest_checkpoint, plan_training

    config, options = TrainRequest(config_path=ctx.config_path, overrides=(*ctx.overrides, *prepared_overrides(ctx))).resolve()
    # the lock keeps an interrupted run's folder: training goes on from its newest checkpoint
    earlier = ctx.output_path("train", "run_dir")
    resume = earlier is not None and latest_checkpoint(earlier / OUTPUT_DIR) is not None
    plan = plan_training(config, resume=resume, run_dir=earlier if resume else None, **options)
    if plan.resume_checkpoint:
        ctx.report(f"train: resuming {ctx.relative(plan.run_dir)} from {plan.resume_checkpoint}")
    ctx.lock.note("train", run_dir=ctx.relative(plan.run_dir))
    info = execute(plan, show_progress=ctx.show_progress, console=ctx.console)
    metrics = info.metrics
    outputs = {"run_dir": ctx.relative(plan.run_dir), "steps": metrics.get("steps"), "final_loss": metrics.get("final_loss"),
               "resumed_from": plan.resume_checkpoint}
    loss = metrics.get("final_loss")
    return Outcome(outputs, f"final loss {loss:.4f} after {metrics.get('steps')} steps" if loss is not None
                   else f"{metrics.get('steps')} steps")


def train_missing(ctx: StageContext) -> str | None:
    from stylewrap.rundir import RunInfo

    run_dir = ctx.output_path("train", "run_dir")
    if run_dir is None or not (run_dir / "run.json").is_file():
        return f"{run_dir or 'the run directory'} is gone"
    info = RunInfo.load(run_dir)
    if info.status != "succeeded" or not info.adapter_dir or not (run_dir / info.adapter_dir).exists():
        return f"{ctx.relative(run_dir)} has no finished weights"
    return None


# ---------------------------------------------------------------- prefer (train.then: dpo|orpo|kto|simpo)


def prefer_off(config: StylewrapConfig) -> str | None:
    return None if config.train.then else "train.then is not set"


def pairs_file(ctx: StageContext) -> Path:
    """datagen's pairs.jsonl when datagen made the data, else data.pairs_file."""
    if datagen_off(ctx.config) is None:
        from stylewrap.datagen.pairs import PAIRS_FILE

        return ctx.config.resolve_path(ctx.config.datagen.output_dir) / PAIRS_FILE
    source = ctx.config.resolve_path(ctx.config.data.pairs_file)
    if source is None:
        raise ConfigError("train.then needs preference pairs", location=Location(ctx.config_path, field="data.pairs_file"),
                          hint="set data.pairs_file (`stylewrap data pairs`), or generate the data with datagen")
    return source


def prefer_inputs(ctx: StageContext) -> dict[str, Path]:
    return {"pairs": pairs_file(ctx)}


def run_prefer(ctx: StageContext) -> Outcome:
    """Preference tuning on top of the SFT run the train stage made (the same `execute` as `train`)."""
    from stylewrap.backends.base import OUTPUT_DIR
    from stylewrap.backends.train import TrainRequest, execute, latest_checkpoint, plan_training

    sft = ctx.output_path("train", "run_dir")
    request = TrainRequest(config_path=ctx.config_path, overrides=ctx.overrides, method=ctx.config.train.then,
                           from_run=str(sft), pairs_file=str(pairs_file(ctx)))
    config, options = request.resolve()
    earlier = ctx.output_path("prefer", "run_dir")
    resume = earlier is not None and latest_checkpoint(earlier / OUTPUT_DIR) is not None
    plan = plan_training(config, resume=resume, run_dir=earlier if resume else None, **options)
    ctx.lock.note("prefer", run_dir=ctx.relative(plan.run_dir))
    info = execute(plan, show_progress=ctx.show_progress, console=ctx.console)
    margin = info.metrics.get("final_rewards_margins")
    outputs = {"run_dir": ctx.relative(plan.run_dir), "steps": info.metrics.get("steps"), "final_loss": info.metrics.get("final_loss"),
               "final_rewards_margins": margin}
    return Outcome(outputs, f"{ctx.config.train.then} on top of SFT, {info.metrics.get('steps')} steps"
                   + (f", reward margin {margin:.4f}" if margin is not None else ""))


def prefer_missing(ctx: StageContext) -> str | None:
    from stylewrap.rundir import RunInfo

    run_dir = ctx.output_path("prefer", "run_dir")
    if run_dir is None or not (run_dir / "run.json").is_file():
        return f"{run_dir or 'the preference run directory'} is gone"
    return None if RunInfo.load(run_dir).status == "succeeded" else f"{ctx.relative(run_dir)} did not finish"


# ---------------------------------------------------------------- export


def export_off(config: StylewrapConfig) -> str | None:
    return "a full fine-tune has nothing to merge" if config.train.method == "full" else None


def run_export(ctx: StageContext) -> Outcome:
    """The merge and the template check `stylewrap export` runs: a merged model whose chat template
    drifted from training is refused here too, unless export.allow_template_mismatch."""
    from stylewrap.backends.export import check_merged, export_run, plan_export

    plan = plan_export(ctx.run_dir(), ctx.config)
    merged = export_run(plan, status=ctx.console.status(f"{plan.backend.name}: merging the adapter into the base model"))
    with ctx.console.status("checking the chat template on every path (runs the backend's own template code)"):
        lines = check_merged(plan.run_dir, ctx.config, allow_mismatch=ctx.config.export.allow_template_mismatch)
    for line in lines:
        ctx.report(f"export: {line}")
    return Outcome({"merged_dir": ctx.relative(merged)}, f"merged model in {ctx.relative(merged)}")


def export_missing(ctx: StageContext) -> str | None:
    merged = ctx.output_path("export", "merged_dir")
    return _missing_file(merged / "config.json" if merged else None)


# ---------------------------------------------------------------- eval


def eval_headline(summary: dict) -> str:
    """The tuned model's J (style x content kept x health) and marker rate, beside the base's."""
    variants = summary.get("variants") or {}
    parts = []
    for name in ("tuned", "base"):
        values = variants.get(name) or {}
        for key in ("j", "marker_rate"):
            if values.get(key):
                parts.append(f"{name} {key} {values[key]['mean']:.2f}")
    answers = [detail for row in summary.get("rows", []) for detail in row["variants"].values()]
    flagged = sum(1 for detail in answers if detail.get("flags"))
    if flagged:  # the report warns first; so does the summary line
        parts.insert(0, f"{flagged} of {len(answers)} answers empty, repeated or garbled")
    return ", ".join(parts) or f"{summary.get('probes')} probes answered side by side"


def eval_probes(config: StylewrapConfig) -> str:
    """A built-in set's name as it is; a file relative to the config's folder."""
    probes = config.eval.probes
    return str(config.resolve_path(probes)) if Path(probes).suffix in (".txt", ".jsonl") else probes


def eval_inputs(ctx: StageContext) -> dict[str, Path]:
    probes = eval_probes(ctx.config)
    return {"probes file": Path(probes)} if Path(probes).suffix in (".txt", ".jsonl") else {}


def run_eval(ctx: StageContext) -> Outcome:
    from stylewrap.eval.entry import EvalRequest, INSTALL_HINT, missing_extra, plan_eval, run_eval as evaluate

    # without the eval extra `stylewrap compare`'s view still runs: answers side by side, no metrics
    measure = not missing_extra()
    if not measure:
        ctx.report(f"eval: metrics need the eval extra ({INSTALL_HINT}); writing the answers side by side")
    plan = plan_eval(EvalRequest(run_dir=ctx.run_dir(), probes=eval_probes(ctx.config),
                                 max_new_tokens=ctx.config.eval.max_new_tokens), ctx.config, measure=measure)
    result = evaluate(plan, console=ctx.console)
    return Outcome({"report": ctx.relative(result.markdown), "report_html": ctx.relative(result.html),
                    "eval_json": ctx.relative(result.eval_json)},
                   f"{eval_headline(result.summary)}; {ctx.relative(result.html)}")


def eval_missing(ctx: StageContext) -> str | None:
    return _missing_file(ctx.output_path("eval", "report"))


# ---------------------------------------------------------------- deploy


def deploy_off(config: StylewrapConfig) -> str | None:
    return None if _in_file(config, "deploy") else "no deploy section"


def run_deploy(ctx: StageContext) -> Outcome:
    from stylewrap.serve import servers
    from stylewrap.serve.deploy import DeployRequest, start

    port = ctx.config.deploy.port
    # the server of an earlier pass serves the old weights: it gives way to the new one
    for record in servers.all_records():
        if record.port == port and servers.is_running(record):
            ctx.report(f"deploy: stopping the server on port {port} (pid {record.pid}) that serves an older build")
            servers.stop(record)
    with ctx.console.status(f"deploy: starting the server on port {port}"):
        record = start(DeployRequest(run_dir=ctx.run_dir()), ctx.config)
    return Outcome({"url": record.base_url, "port": record.port, "pid": record.pid, "models": record.models},
                   f"{record.base_url} serving {', '.join(record.models)}")


def deploy_missing(ctx: StageContext) -> str | None:
    from stylewrap.serve import servers

    pid, port = ctx.output("deploy", "pid"), ctx.output("deploy", "port")
    live = [r for r in servers.all_records() if r.port == port and r.pid == pid and servers.is_running(r)]
    return None if live else f"the server on port {port} is not running"


# ---------------------------------------------------------------- publish


def publish_off(config: StylewrapConfig) -> str | None:
    return None if _in_file(config, "publish") else "no publish section"


def run_publish(ctx: StageContext) -> Outcome:
    from stylewrap.publish.hub import publish_dataset, publish_model

    result = publish_model(ctx.run_dir(), ctx.config.publish, report=ctx.report)
    outputs = {"repo": result.plan.repo_id, "url": result.url}
    if ctx.config.publish.dataset_repo:
        # the generated folder carries its manifest (teacher, prompts, counts) into the dataset card
        generated = datagen_off(ctx.config) is None
        source = ctx.config.resolve_path(ctx.config.datagen.output_dir) if generated else data_source(ctx)
        dataset = publish_dataset(source, ctx.config.publish, report=ctx.report)
        outputs["dataset_url"] = dataset.url
    return Outcome(outputs, f"{result.url}")


STAGES: tuple[Stage, ...] = (
    Stage("datagen", ("datagen", "style"), "stylewrap.datagen.pipeline.run_datagen", run_datagen, datagen_inputs,
          lambda ctx: _missing_file(ctx.output_path("datagen", "train_file")), datagen_off, uses_backend=False),
    Stage("data", ("data",), "stylewrap.adapters validate/dedup/split/convert + stylewrap.dataops.register_dataset",
          run_data, data_inputs, data_missing, _always),
    Stage("train", ("train", "style"), "stylewrap.backends.train.execute", run_train, train_inputs, train_missing, _always),
    Stage("prefer", ("train", "style"), "stylewrap.backends.train.execute (train --method THEN --from-run SFT)", run_prefer,
          prefer_inputs, prefer_missing, prefer_off),
    Stage("export", ("export",), "stylewrap.backends.export.export_run + check_merged", run_export, _no_inputs, export_missing, export_off),
    Stage("eval", ("eval", "style"), "stylewrap.eval.entry.run_eval", run_eval, eval_inputs, eval_missing, _always),
    Stage("deploy", ("deploy",), "stylewrap.serve.deploy.start", run_deploy, _no_inputs, deploy_missing, deploy_off),
    Stage("publish", ("publish",), "stylewrap.publish.hub.publish_model", run_publish, _no_inputs,
          lambda ctx: None, publish_off),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)
