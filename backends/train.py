"""`stylewrap render` and `stylewrap train`: config + data -> a run directory -> the backend's own
program, with a unified progress bar, a loss curve and a summary at the end (`trainlog`). Training
presets are `presets.py`; the run's converted dataset `rundata.py`.

Everything a run reads is written under its run directory with paths relative to it (the backend
runs with the run directory as cwd), so `config/command.sh` re-runs it anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from stylewrap.backends import autotune, preference
from stylewrap.backends.base import CONFIG_DIR, OUTPUT_DIR, Launch, TableBackend, check_keys, get_backend
from stylewrap.backends.deepspeedrun import deepspeed_file, require_deepspeed, single_process_deepspeed
from stylewrap.backends.flags import TRACKER_ENV, TRACKER_LOGS, TRACKER_PACKAGES
from stylewrap.backends.modelinfo import ModelShape, model_config, model_family
from stylewrap.backends.presets import load_preset, load_train_config, values_from_elsewhere
from stylewrap.backends.render import render
from stylewrap.backends.rundata import VAL_SUFFIX, hub_dataset_id, overlength_notice, write_dataset
from stylewrap.backends.steps import failure
from stylewrap.backends.trainlog import ProgressFeed, draw_loss_curve, progress_bar
from stylewrap.config import DEFAULT_SYSTEM_PROMPT, StylewrapConfig, TrainConfig
from stylewrap.errors import ConfigError, InputError, Location
from stylewrap.fsutil import atomic_write_text
from stylewrap.rundir import RunInfo
from stylewrap.runner import Invocation, describe
from stylewrap.secrets import redact_env

DATA_DIR = "data"
TRAIN_CONFIG = f"{CONFIG_DIR}/train.yaml"
COMMAND_FILE = f"{CONFIG_DIR}/command.sh"
LOG_FILE = "train.log"
PROGRESS_FILE = "progress.jsonl"
LOSS_PNG = "loss.png"


# ---------------------------------------------------------------- the plan


@dataclass
class TrainPlan:
    """Everything `train` would write and run, built without touching the disk."""

    backend: TableBackend
    config: StylewrapConfig
    run_dir: Path
    launch: Launch
    options: dict[str, Any]
    sections: dict[str, dict[str, Any]]
    files: dict[str, str]                     # relative path -> text (configs, command.sh)
    invocation: Invocation
    train_file: Path | None
    dataset_name: str
    tuning: autotune.Tuning
    preset: str | None = None
    resume_checkpoint: str | None = None
    deepspeed_source: Path | None = None
    step: str = "train"                       # or "preference" (train --method dpo|orpo|kto|simpo)
    hub_dataset: str | None = None            # data.train_file names a hub dataset the backend downloads
    notices: list[str] = field(default_factory=list)   # what the user should know before it runs (stderr, config header)


def resolve_model(config: StylewrapConfig) -> str:
    model = config.train.model
    if not model:
        raise ConfigError("no base model", location=Location(field="train.model"),
                          hint="set train.model to a local folder or a hub id, or use --preset")
    local = config.resolve_path(model)
    return str(local) if local is not None and local.exists() else model


def quantized_base(model: str) -> bool:
    return "quantization_config" in (model_config(model) or {})


def unified_options(config: StylewrapConfig, t: TrainConfig, model: str, dataset: dict[str, Any],
                    deepspeed_file: str | None, resume_checkpoint: str | None) -> dict[str, Any]:
    """The run's options in stylewrap's names, from `t`: config.train with the tuned values in."""
    family = model_family(model)
    template = t.template or family.get("template")
    if template is None:
        raise ConfigError("cannot tell the chat template of this model", location=Location(field="train.template"),
                          hint="set train.template (e.g. qwen, qwen2_5, qwen3, llama3)")
    lora = t.method in ("lora", "qlora")
    # a separate validation file replaces the split (llamafactory refuses both at once)
    validating = bool(config.data.val_file or config.data.val_size)
    val_size = None if config.data.val_file else (config.data.val_size or None)
    return {
        "model": model,
        "model_type": family.get("model_type"),
        "template": template,
        # stylewrap's, never the backend template's own: the same prompt on every backend
        "system": config.style.system_prompt or DEFAULT_SYSTEM_PROMPT,
        "dtype": t.dtype,
        "attention": t.attention,
        "method": t.method,
        "quantization_bit": (t.quantization_bit or 4) if t.method == "qlora" else None,
        "lora_rank": t.lora_rank if lora else None,
        "lora_alpha": (t.lora_alpha or 2 * t.lora_rank) if lora else None,
        "lora_dropout": t.lora_dropout if lora else None,
        "lora_target": t.lora_target if lora else None,
        **dataset,
        "val_size": val_size,
        "cutoff_len": config.data.max_tokens or t.cutoff_len,
        "overlength": config.data.overlength,
        "packing": t.packing,
        "group_by_length": t.group_by_length,
        "dataloader_num_workers": t.dataloader_num_workers,
        "per_device_train_batch_size": t.per_device_train_batch_size,
        "per_device_eval_batch_size": t.per_device_train_batch_size if validating else None,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.num_train_epochs,
        "max_steps": t.max_steps,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_ratio": None if t.warmup_steps is not None else t.warmup_ratio,
        "warmup_steps": t.warmup_steps,
        "max_grad_norm": t.max_grad_norm,
        "gradient_checkpointing": t.gradient_checkpointing,
        "liger_kernel": t.liger_kernel or None,
        "deepspeed": deepspeed_file,
        "seed": t.seed,
        "eval_strategy": "steps" if validating else "no",
        "eval_steps": (t.eval_steps or t.save_steps) if validating else None,
        "logging_steps": t.logging_steps,
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "output_dir": OUTPUT_DIR,
        "resume_from_checkpoint": resume_checkpoint,
        "loss_on": t.loss_on,
        "model_name": [config.style.identity.name] if config.style.identity else None,
        "model_author": [config.style.identity.author] if config.style.identity else None,
        "report_to": t.report_to,
    }


def check_tracker(backend: TableBackend, tracker: str) -> None:
    """The tracker's package must be in the backend env, or the run dies after loading the model."""
    installed = backend.installed()
    if tracker != "none" and installed and not any(package in installed for package in TRACKER_PACKAGES[tracker]):
        raise InputError(f"{tracker} is not installed in the {backend.name} environment",
                         location=Location(field="train.report_to"),
                         hint=f"`stylewrap backend install {backend.name} --with {tracker}`, or use report_to: none")


def thinking_template(backend: TableBackend, template: str, train_file: Path | None) -> str:
    """A hybrid-thinking template's no-thinking twin when the answers carry no <think> block: both
    backends otherwise add an empty <think></think> to every trained answer (docs/ecosystem.md)."""
    if template not in backend.nothink_templates or train_file is None or not train_file.is_file():
        return template
    with train_file.open(encoding="utf-8", errors="replace") as handle:
        if any("<think>" in line for line in handle):
            return template
    return backend.nothink_templates[template]


def new_run_dir(config: StylewrapConfig, backend: str, method: str, node_rank: int = 0) -> Path:
    """runs/<time>-<backend>-<method>; a node other than rank 0 adds -node<R>: its folder holds its
    config, data and log, never weights, and two nodes on one shared disk never meet in one folder."""
    root = config.resolve_path(config.train.output_dir) or Path(config.train.output_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    node = f"-node{node_rank}" if node_rank else ""
    candidate = root / f"{stamp}-{backend}-{method}{node}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{stamp}-{backend}-{method}-{suffix}{node}"
    return candidate


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint-N anywhere under output_dir (ms-swift may nest it in v0-<time>/)."""
    found = [p for p in output_dir.rglob("checkpoint-*") if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return max(found, key=lambda p: (p.stat().st_mtime, int(p.name.split("-")[1]))) if found else None


def weights_dir(output_dir: Path) -> Path | None:
    """Where the trained adapter or full weights are: output_dir itself (llamafactory saves the
    final model there) or its newest checkpoint (ms-swift keeps them in checkpoint-N only)."""
    if any((output_dir / name).is_file() for name in ("adapter_config.json", "config.json")):
        return output_dir
    return latest_checkpoint(output_dir)


def resumable_run(config: StylewrapConfig, backend: str) -> Path:
    root = config.resolve_path(config.train.output_dir) or Path(config.train.output_dir)
    runs = sorted((p.parent for p in root.glob("*/run.json")), key=lambda p: p.stat().st_mtime, reverse=True)
    for run_dir in runs:
        info = RunInfo.load(run_dir)
        if info.backend == backend and info.status != "succeeded" and latest_checkpoint(run_dir / OUTPUT_DIR):
            return run_dir
    raise InputError("no unfinished run with a checkpoint to resume", location=Location(root),
                     hint="start a new run without --resume")


def plan_training(config: StylewrapConfig, *, backend_name: str | None = None, launch: Launch | None = None,
                  deepspeed: str | None = None, resume: bool = False, run_dir: Path | None = None,
                  preset: str | None = None, notices: Iterable[str] = ()) -> TrainPlan:
    backend = get_backend(backend_name or config.train.backend, config)
    launch = launch or Launch(nproc_per_node=config.train.nproc_per_node, nnodes=config.train.nnodes)
    objective = config.train.preference.method
    step = preference.STEP if objective else "train"
    start = preference.starting_point(config, resolve_model(config)) if objective else None
    model = start.model if start else resolve_model(config)
    resume_checkpoint = None
    if resume:
        # a caller that knows the run (`stylewrap run`, from its lock file) names it; else the newest unfinished
        run_dir = Path(run_dir) if run_dir else resumable_run(config, backend.name)
        checkpoint = latest_checkpoint(run_dir / OUTPUT_DIR)
        resume_checkpoint = str(checkpoint.relative_to(run_dir))
    run_dir = Path(run_dir) if run_dir else new_run_dir(config, backend.name, objective or config.train.method,
                                                         launch.node_rank)
    if " " in str(run_dir.resolve()):
        # llamafactory's torchrun launcher splits its command line on spaces
        raise InputError("the run directory path must not contain spaces", location=Location(run_dir))
    hub_id = None if objective else hub_dataset_id(config)
    if objective:
        train_file = config.resolve_path(config.data.pairs_file)
        dataset_name = f"{config.data.dataset_name}_{preference.ROW_KIND[objective]}"
        dataset = backend.dataset_options(DATA_DIR, dataset_name)
    else:
        train_file = None if hub_id else config.resolve_path(config.data.train_file)
        dataset_name = config.data.dataset_name
        dataset = (backend.hub_dataset_options(DATA_DIR, dataset_name, hub_id) if hub_id
                   else backend.dataset_options(DATA_DIR, dataset_name))
    if config.data.val_file:
        dataset["eval_dataset"] = f"{dataset_name}{VAL_SUFFIX}"
    notices = list(notices)
    if not objective and train_file is not None and (counted := overlength_notice(config, train_file)):
        notices.append(counted)
    deepspeed_file(deepspeed or config.train.deepspeed, config)   # a bad path is refused even where it is left out
    ds_choice = single_process_deepspeed(deepspeed or config.train.deepspeed, launch, backend.name, notices)
    ds_relative, ds_text, ds_source = deepspeed_file(ds_choice, config)
    tuning = tune(config, backend, model, launch, train_file, deepspeed=bool(ds_choice))
    train = config.train.model_copy(update=tuning.values)
    options = unified_options(config, train, model, dataset, ds_relative, resume_checkpoint)
    if not config.train.template:
        options["template"] = thinking_template(backend, options["template"], train_file)
    notes = list(tuning.notes)
    if start is not None:
        options.update(preference.options(config, start))
        notes += preference.notes(config, start)
    sections = backend.sections(step, options)
    if config.train.extra_args:
        sections["extra"].update(config.train.extra_args)
    invocation = backend.train_invocation(run_dir, TRAIN_CONFIG, launch, step)
    invocation.env.update(tuning.env)
    invocation.env.update({key: value.format(run_dir=run_dir.resolve())
                           for key, value in TRACKER_ENV.get(config.train.report_to, {}).items()})
    if hub_id:
        invocation.env.update(backend.hub_dataset_env)
    files = {TRAIN_CONFIG: render(f"train_{config.train.method}.yaml.j2", title="Training config",
                                  backend=backend.name, command=backend.display_command(step, TRAIN_CONFIG, launch),
                                  sections=sections, notes=[*notices, *notes])}
    if ds_text is not None:
        files[ds_relative] = ds_text
    files[COMMAND_FILE] = command_script(backend.name, "training", invocation, [*files, *([ds_relative] if ds_source else [])])
    return TrainPlan(backend=backend, config=config, run_dir=run_dir, launch=launch, options=options, sections=sections,
                     files=files, invocation=invocation, train_file=train_file, dataset_name=dataset_name, hub_dataset=hub_id,
                     tuning=tuning, preset=preset, resume_checkpoint=resume_checkpoint, deepspeed_source=ds_source,
                     step=step, notices=notices)


def tune(config: StylewrapConfig, backend: TableBackend, model: str, launch: Launch,
         train_file: Path | None, deepspeed: bool = False) -> autotune.Tuning:
    """The unset speed settings, chosen for the GPUs this machine has (see `autotune`)."""
    def longest_row() -> int:
        if train_file is None or not train_file.is_file():
            return config.train.cutoff_len
        return autotune.longest_row_tokens(train_file, config.data.format, model)

    return autotune.tune(config.train, hardware=autotune.detect_hardware(config.train), shape=ModelShape.of(model),
                         installed=backend.installed(), backend=backend,
                         processes_per_node=launch.nproc_per_node, nodes=launch.nnodes, row_tokens=longest_row,
                         deepspeed=deepspeed)


def shell_exports(invocation: Invocation) -> dict[str, str]:
    """The invocation's env as shell-quoted values for `export` lines, secrets redacted; the env's
    bin goes in front of whatever PATH the shell running the script has."""
    import os
    import shlex

    env = {key: shlex.quote(value) for key, value in redact_env(invocation.env).items()}
    inherited = os.pathsep + os.environ.get("PATH", "")
    if invocation.env.get("PATH", "").endswith(inherited):
        env["PATH"] = shlex.quote(invocation.env["PATH"][: -len(inherited)]) + os.pathsep + '"$PATH"'
    return env


def command_script(backend: str, purpose: str, invocation: Invocation, files: Iterable[str]) -> str:
    return render("command.sh.j2", backend=backend, purpose=purpose, script=COMMAND_FILE, files=list(files),
                  env=shell_exports(invocation), argv=invocation.argv)


def describe_plan(plan: TrainPlan) -> str:
    lines = [describe(plan.invocation), "files:"]
    lines += [f"  {plan.run_dir / name}" for name in plan.files]
    if plan.deepspeed_source:
        lines.append(f"  {plan.run_dir / plan.options['deepspeed']} (copy of {plan.deepspeed_source})")
    if plan.hub_dataset:
        lines.append(f"  {plan.run_dir / DATA_DIR} (hub dataset {plan.hub_dataset}: {plan.backend.name} downloads it)")
    else:
        data = plan.train_file or "(data.train_file not set)"
        lines.append(f"  {plan.run_dir / DATA_DIR} ({plan.backend.data_format} rows converted from {data})")
    for name, text in plan.files.items():
        lines += ["", f"--- {name}", text.rstrip()]
    return "\n".join(lines)


def write_plan(plan: TrainPlan, *, with_data: bool) -> dict[str, Any] | None:
    """Write configs (and the converted data) into the run directory; on bad input, leave nothing."""
    created = not plan.run_dir.exists()
    try:
        check_keys(plan.backend, plan.step, plan.sections, TRAIN_CONFIG)
        writer = preference.write_dataset if plan.step == preference.STEP else write_dataset
        dataset = (writer(plan.backend, plan.config, plan.run_dir / DATA_DIR, plan.dataset_name)
                   if with_data or plan.train_file is not None or plan.hub_dataset else None)
        for name, text in plan.files.items():
            atomic_write_text(plan.run_dir / name, text)
        (plan.run_dir / COMMAND_FILE).chmod(0o755)
        if plan.deepspeed_source is not None:
            shutil.copyfile(plan.deepspeed_source, plan.run_dir / plan.options["deepspeed"])
    except BaseException:
        if created:
            shutil.rmtree(plan.run_dir, ignore_errors=True)
        raise
    return dataset


def render_run(config: StylewrapConfig, out_dir: Path, **kwargs) -> TrainPlan:
    """`stylewrap render`: everything a run would use, written to out_dir, nothing started."""
    plan = plan_training(config, run_dir=out_dir, **kwargs)
    write_plan(plan, with_data=False)
    return plan


@dataclass
class TrainRequest:
    """A run as asked for on the command line; what is left unset comes from the config (and preset)."""

    config_path: Path | None = None
    overrides: tuple[str, ...] = ()
    backend: str | None = None
    preset: str | None = None
    nproc_per_node: int | None = None
    nnodes: int | None = None
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    deepspeed: str | None = None
    method: str | None = None          # sft, or a preference objective (train.preference.method)
    from_run: str | None = None        # train.preference.from_run
    pairs_file: str | None = None      # data.pairs_file
    launcher: str | None = None        # train.launcher
    cluster: dict[str, Any] = field(default_factory=dict)   # slurm.<key> -> value given on the command line

    def resolve(self) -> tuple[StylewrapConfig, dict[str, Any]]:
        """The config, and the keyword arguments of `plan_training` the request sets."""
        overrides = list(self.overrides)
        if self.launcher:
            overrides.append(f"train.launcher={self.launcher}")
        overrides += [f"slurm.{key}={json.dumps(value)}" for key, value in self.cluster.items() if value is not None]
        if self.method:
            overrides.append(f"train.preference.method={'null' if self.method == 'sft' else self.method}")
        if self.from_run:
            overrides.append(f"train.preference.from_run={json.dumps(str(Path(self.from_run).resolve()))}")
        if self.pairs_file:
            overrides.append(f"data.pairs_file={json.dumps(self.pairs_file)}")
        config = load_train_config(self.config_path, overrides, self.preset, self.backend)
        notices = []
        if self.preset:
            notices += [f"preset {self.preset} differs from its source: {note}" for note in load_preset(self.preset).get("differences") or []]
            elsewhere = values_from_elsewhere(self.preset, self.config_path, self.overrides)
            if elsewhere:
                notices.append(f"preset {self.preset}: values that are not the preset's: {'; '.join(elsewhere)}")
        launch = Launch(nproc_per_node=self.nproc_per_node or config.train.nproc_per_node,
                        nnodes=self.nnodes or config.train.nnodes, node_rank=self.node_rank,
                        master_addr=self.master_addr, master_port=self.master_port)
        return config, {"backend_name": self.backend, "launch": launch, "deepspeed": self.deepspeed, "preset": self.preset,
                        "notices": notices}


def on_cluster(request: TrainRequest) -> bool:
    """Whether the request goes to a scheduler (`--launcher slurm`, or train.launcher in the config)."""
    return (request.launcher or request.resolve()[0].train.launcher) == "slurm"


def plan_request(request: TrainRequest, *, resume: bool = False) -> TrainPlan:
    config, options = request.resolve()
    return plan_training(config, resume=resume, **options)


def render_request(request: TrainRequest, out_dir: Path) -> TrainPlan:
    config, options = request.resolve()
    return render_run(config, out_dir, **options)


def prepare_run(plan: TrainPlan, status: str = "running") -> RunInfo:
    """Check the backend env, write the run folder and its run.json: all a start needs (here, or
    the cluster job `slurm` submits)."""
    plan.backend.require_installed()
    require_deepspeed(plan.backend, plan.options.get("deepspeed"))
    check_tracker(plan.backend, plan.config.train.report_to)
    dataset = write_plan(plan, with_data=True)
    return RunInfo(run_id=plan.run_dir.name, backend=plan.backend.name, backend_version=plan.backend.version(),
                   base_model=plan.options["model"], method=plan.config.train.method, template=plan.options["template"],
                   command=plan.invocation.shell_line(), config_files=list(plan.files), dataset=dataset or {},
                   hyperparameters={k: v for k, v in plan.options.items() if v is not None},
                   status=status, created_at=_now(),
                   extra={"launch": asdict(plan.launch), "env": redact_env(plan.invocation.env), "preset": plan.preset,
                          "log": LOG_FILE, "backend_log": f"{OUTPUT_DIR}/{plan.backend.log_file}",
                          "resumed_from": plan.resume_checkpoint, "auto": plan.tuning.notes,
                          "preference": preference.run_record(plan.options, plan.config) if plan.step == preference.STEP
                          else None,
                          "tracking": {"report_to": plan.config.train.report_to,
                                       "logs": TRACKER_LOGS.get(plan.config.train.report_to)}})


def execute(plan: TrainPlan, *, show_progress: bool = True, console=None, echo=None) -> RunInfo:
    from stylewrap import runner

    info = prepare_run(plan)
    info.save(plan.run_dir)
    bar = progress_bar(console) if show_progress else None
    feed = ProgressFeed(plan.backend, plan.run_dir / OUTPUT_DIR / plan.backend.log_file, bar)
    try:
        if bar is not None:
            bar.start()
        started = time.perf_counter()
        result = runner.run(plan.invocation, log_file=plan.run_dir / LOG_FILE, on_line=feed.poll, echo=echo,
                            new_session=True)
        feed.backend_seconds = time.perf_counter() - started
        feed.poll()
    except BaseException:
        info.status, info.finished_at = "failed", _now()
        info.save(plan.run_dir)
        raise
    finally:
        if bar is not None:
            bar.stop()
    finish(plan, info, feed, result.ok)
    if not result.ok:
        raise failure(plan.backend.name, "training", result.returncode, plan.run_dir / LOG_FILE, result.tail)
    return info


def finish(plan: TrainPlan, info: RunInfo, feed: ProgressFeed, ok: bool) -> None:
    record_outcome(plan.backend, plan.run_dir, info, feed, ok, worker=plan.launch.worker)


def record_outcome(backend: TableBackend, run_dir: Path, info: RunInfo, feed: ProgressFeed, ok: bool, *,
                   worker: bool = False) -> None:
    """run.json, progress.jsonl and the loss curve once the backend has stopped (here, or in a
    cluster job: `slurm`)."""
    atomic_write_text(run_dir / PROGRESS_FILE, "".join(json.dumps(p.as_json()) + "\n" for p in feed.records))
    # a worker node's output/ has at most its own ranks' RNG states: the trainer saves weights on rank 0 only
    weights = None if worker else weights_dir(run_dir / OUTPUT_DIR)
    info.adapter_dir = str(weights.relative_to(run_dir)) if weights else None
    losses = [p.loss for p in feed.records if p.loss is not None]
    info.metrics = {"steps": feed.records[-1].step if feed.records else 0, "backend_seconds": feed.backend_seconds,
                    **preference.reward_metrics(run_dir),
                    "final_loss": losses[-1] if losses else None, "first_loss": losses[0] if losses else None,
                    **{k: v for k, v in feed.finals.items() if isinstance(v, (int, float))}}
    if losses:
        title = f"{run_dir.name}: {backend.name} {info.hyperparameters.get('objective') or info.method}"
        undrawn = draw_loss_curve(backend, run_dir / PROGRESS_FILE, run_dir / LOSS_PNG, title)
        info.loss_png = None if undrawn else LOSS_PNG
        if undrawn:
            info.extra["loss_curve"] = undrawn
    info.status = "succeeded" if ok and (weights or worker) else "failed"
    info.finished_at = _now()
    info.save(run_dir)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
