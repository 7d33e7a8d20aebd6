"""`stylewrap export`: merge a run's LoRA adapter into its (unquantized) base model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stylewrap.backends.autotune import query_nvidia_smi
from stylewrap.backends.base import TableBackend, check_keys, get_backend
from stylewrap.backends.steps import config_path, render_step_config, run_step
from stylewrap.backends.modelinfo import model_family
from stylewrap.backends.train import quantized_base
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError, Location
from stylewrap.rundir import RunInfo, load_run
from stylewrap.runner import Invocation, describe

MERGED_DIR = "merged"
EXPORT_LOG = "export.log"


@dataclass
class ExportPlan:
    backend: TableBackend
    info: RunInfo
    run_dir: Path
    output_dir: Path
    files: dict[str, str]
    invocation: Invocation


def calibration_file(run_dir: Path, info: RunInfo) -> str:
    """The run's converted training rows (the backend's own format), to calibrate quantization on."""
    found = sorted((run_dir / "data").glob(f"{info.dataset.get('name', '*')}.json*"))
    if not found:
        raise InputError("quantized export calibrates on the run's training data, and it is gone",
                         location=Location(run_dir / "data"))
    return str(found[0].resolve())


def plan_export(run_dir: Path, config: StylewrapConfig, *, output_dir: Path | None = None,
                quantization_bit: int | None = None, checkpoint: str | None = None) -> ExportPlan:
    run_dir = Path(run_dir)
    info = load_run(run_dir, checkpoint)
    if info.method == "full":
        raise InputError("a full fine-tune has nothing to merge: its weights are already a complete model",
                         location=Location(run_dir), hint=f"use {run_dir / (info.adapter_dir or 'output')} directly")
    if not info.adapter_dir or not (run_dir / info.adapter_dir).is_dir():
        raise InputError("this run has no trained adapter", location=Location(run_dir / "run.json", field="adapter_dir"))
    if quantized_base(info.base_model):
        raise InputError("the base model is quantized; merging a LoRA onto quantized weights corrupts them",
                         location=Location(info.base_model), hint="merge onto the original full-precision model")
    quantization_bit = quantization_bit or config.export.quantization_bit
    if quantization_bit and not query_nvidia_smi().gpus:
        raise InputError("quantized export calibrates on a CUDA GPU and none is visible",
                         location=Location(field="export.quantization_bit"), hint="export without quantization here")
    backend = get_backend(info.backend, config)
    target = Path(output_dir) if output_dir else (config.resolve_path(config.export.output_dir) if config.export.output_dir
                                                  else run_dir / MERGED_DIR)
    options = {"model": info.base_model, "model_type": model_family(info.base_model).get("model_type"),
               "adapter": info.adapter_dir, "template": info.template, "output_dir": str(target.resolve()),
               "max_shard_size_gb": config.export.max_shard_size_gb, "quantization_bit": quantization_bit,
               "calibration_data": calibration_file(run_dir, info) if quantization_bit else None}
    sections = backend.sections("export", options)
    check_keys(backend, "export", sections, config_path("export"))
    invocation = backend.export_invocation(run_dir, config_path("export"))
    relative, text = render_step_config(backend, "export", "export.yaml.j2", "Merge (export) config", sections, invocation)
    return ExportPlan(backend=backend, info=info, run_dir=run_dir, output_dir=target, files={relative: text},
                      invocation=invocation)


def export_run(plan: ExportPlan, *, status=None) -> Path:
    run_step(plan.backend, plan.invocation, plan.files, plan.run_dir / EXPORT_LOG, "export", status)
    if not (plan.output_dir / "config.json").is_file():
        raise InputError("the backend reported success but wrote no model", location=Location(plan.output_dir))
    saved = RunInfo.load(plan.run_dir)   # plan.info may point at a chosen checkpoint: run.json keeps the final weights
    try:
        saved.merged_dir = str(plan.output_dir.resolve().relative_to(plan.run_dir.resolve()))
    except ValueError:
        saved.merged_dir = str(plan.output_dir.resolve())
    saved.extra["merged_from"] = plan.info.adapter_dir
    saved.save(plan.run_dir)
    return plan.output_dir


def describe_export(plan: ExportPlan) -> str:
    files = [f"--- {plan.run_dir / name}\n{text.rstrip()}" for name, text in plan.files.items()]
    return "\n".join([describe(plan.invocation), f"output: {plan.output_dir}", *files])


def export_ollama(run_dir: Path, config: StylewrapConfig, *, allow_mismatch: bool = False) -> tuple[Path, list[str]]:
    """Write RUN/ollama/Modelfile (TEMPLATE, SYSTEM, stops from the run's training template), check it
    against the training template and the merged model, and convert to GGUF where llama.cpp is
    installed. -> (the Modelfile, lines to show)."""
    from stylewrap.backends import gguf, ollama, templatecheck
    from stylewrap.fsutil import atomic_write_text

    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    merged = run_dir / info.merged_dir if info.merged_dir else None
    if merged is None or not (merged / "config.json").is_file():
        raise InputError("export the merged model first", location=Location(run_dir), hint=f"stylewrap export {run_dir}")
    backend = get_backend(info.backend, config)
    # the system prompt the run trained with (a row without one got it)
    system = info.hyperparameters.get("system") or config.style.system_prompt
    model_type = model_family(info.base_model).get("model_type")
    messages = templatecheck.conversation(system)
    trained = templatecheck.backend_rendering(backend, "train", model=info.base_model, template=info.template,
                                              model_type=model_type, options=templatecheck.train_options(run_dir),
                                              messages=messages)
    reference, probe = trained
    text = reference.full.get("text") or "".join(reference.full["tokens"])
    pieces = ollama.cut_pieces(text, [m["content"] for m in messages])
    lines = []
    source = f"../{merged.relative_to(run_dir)}" if merged.is_relative_to(run_dir) else str(merged)
    out_dir = run_dir / ollama.OLLAMA_DIR
    if gguf.converter(fetch=False) is not None:
        try:
            source = gguf.convert(backend.python(), merged, out_dir / "model.gguf", run_dir / gguf.GGUF_DIR / gguf.LOG_FILE,
                                  fetch=False).name
        except InputError as refused:
            # the safetensors folder still imports: Ollama reads Qwen2/Llama/Mistral/Gemma folders itself
            lines.append(f"no GGUF: {refused.message}; the Modelfile imports the merged folder")
    else:
        lines.append(ollama.GGUF_MISSING)
    modelfile = out_dir / ollama.MODELFILE
    atomic_write_text(modelfile, ollama.modelfile_text(source, ollama.go_template(pieces),
                                                       system or probe.get("default_system"), probe["stop_words"]))
    report = templatecheck.check_run(run_dir, backend, base_model=info.base_model, template=info.template,
                                     model_type=model_type, system=system, merged_dir=merged, modelfile=modelfile,
                                     trained=trained)
    lines += report.lines()
    templatecheck.require_consistent(report, allow=allow_mismatch, action="ollama export")
    lines.append(f"run `ollama create NAME -f {modelfile}` to import it")
    return modelfile, lines


def export_gguf(run_dir: Path, config: StylewrapConfig, *, allow_mismatch: bool = False) -> tuple[Path, list[str]]:
    """RUN/gguf/model-f16.gguf from the merged model by llama.cpp's converter (`backends/gguf.py`),
    after the merged model's template check. -> (the GGUF file, lines to show)."""
    from stylewrap.backends import gguf

    lines = check_merged(run_dir, config, allow_mismatch=allow_mismatch)
    info = RunInfo.load(run_dir)
    merged = Path(run_dir) / info.merged_dir
    out_dir = Path(run_dir) / gguf.GGUF_DIR
    written = gguf.convert(get_backend(info.backend, config).python(), merged, out_dir / "model-f16.gguf",
                           out_dir / gguf.LOG_FILE)
    return written, [*lines, f"GGUF (f16, llama.cpp's converter from {gguf.LLAMA_CPP_SDIST[0]} "
                             f"{gguf.LLAMA_CPP_SDIST[1]}): {written}"]


def check_merged(run_dir: Path, config: StylewrapConfig, *, allow_mismatch: bool = False) -> list[str]:
    """The merged model's chat_template against the training template."""
    from stylewrap.backends import templatecheck

    info = RunInfo.load(run_dir)
    report = templatecheck.check_run(
        Path(run_dir), get_backend(info.backend, config), base_model=info.base_model, template=info.template,
        model_type=model_family(info.base_model).get("model_type"),
        system=info.hyperparameters.get("system") or config.style.system_prompt,
        merged_dir=Path(run_dir) / info.merged_dir if info.merged_dir else None)
    templatecheck.require_consistent(report, allow=allow_mismatch, action="export")
    return report.lines()
