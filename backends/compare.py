"""`stylewrap compare`: the base model (optionally told the style in a system prompt, as the
古文翻译腔 tutorial did) and the tuned model answer the same probe questions through the run's own
backend; the answers land side by side in a Markdown and an HTML report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

from stylewrap.backends.base import TableBackend, get_backend
from stylewrap.backends.render import render
from stylewrap.backends.steps import config_path, render_step_config, run_step
from stylewrap.backends.modelinfo import model_family
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError, Location
from stylewrap.fsutil import atomic_write_json, atomic_write_text
from stylewrap.rundir import RunInfo
from stylewrap.runner import Invocation, describe

COMPARE_DIR = "compare"
VARIANTS = ("base", "tuned")


def probes_folder():
    return resources.files("stylewrap.templates") / "probes"


def builtin_probe_sets() -> list[str]:
    return sorted(p.name[:-4] for p in probes_folder().iterdir() if p.name.endswith(".txt") and ".system" not in p.name)


def load_probes(name_or_path: str) -> tuple[str, list[str]]:
    """A built-in probe set name, a .txt file (one question per line) or a .jsonl of {"question"}."""
    path = Path(name_or_path)
    if not path.is_file():
        builtin = probes_folder() / f"{name_or_path}.txt"
        if not builtin.is_file():
            raise InputError(f"no probe file or built-in probe set {name_or_path!r}",
                             hint=f"built-in: {', '.join(builtin_probe_sets())}")
        return name_or_path, [q.strip() for q in builtin.read_text(encoding="utf-8").splitlines() if q.strip()]
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".jsonl":
        return str(path), [q.strip() for q in text.splitlines() if q.strip()]
    questions = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", location=Location(path, number)) from None
        if not isinstance(row, dict) or not str(row.get("question") or "").strip():
            raise InputError("needs a non-empty \"question\"", location=Location(path, number, "question"))
        questions.append(row["question"].strip())
    if not questions:
        raise InputError("no questions", location=Location(path))
    return str(path), questions


def style_prompt(value: str | None) -> str | None:
    """Text as given, or the system prompt shipped with a built-in probe set (e.g. "classical")."""
    if value is None:
        return None
    shipped = probes_folder() / f"{value}.system.txt"
    return shipped.read_text(encoding="utf-8").strip() if shipped.is_file() else value


@dataclass
class Step:
    variant: str
    invocation: Invocation
    files: dict[str, str]
    result_file: str


@dataclass
class ComparePlan:
    backend: TableBackend
    info: RunInfo
    run_dir: Path
    out_dir: Path
    probes: str
    questions: list[str]
    base_system: str | None
    max_new_tokens: int
    tuned: str
    steps: list[Step] = field(default_factory=list)


def _probe_file(questions: list[str], system: str | None) -> str:
    rows = []
    for question in questions:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        rows.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return "\n".join(rows) + "\n"


def plan_compare(run_dir: Path, config: StylewrapConfig, *, probes: str = "classical", base_system: str | None = None,
                 max_new_tokens: int = 128, template: str | None = None) -> ComparePlan:
    """`template` prompts both models with another chat template than the run was trained with
    (e.g. the model's own, to see what a run trained with the wrong one answers once served)."""
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    if not info.adapter_dir or not (run_dir / info.adapter_dir).is_dir():
        raise InputError("this run has no trained weights to compare", location=Location(run_dir / "run.json", field="adapter_dir"))
    backend = get_backend(info.backend, config)
    probe_name, questions = load_probes(probes)
    out_dir = run_dir / COMPARE_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")
    weights = str((run_dir / info.adapter_dir).resolve())
    full = info.method == "full"
    tuned_system = info.hyperparameters.get("system")
    # no cutoff: ms-swift refuses (MaxLengthError) a prompt longer than max_length at inference
    common = {"template": template or info.template, "max_new_tokens": max_new_tokens}
    variants = {
        "base": {"model": info.base_model, "adapter": None, "system": style_prompt(base_system)},
        "tuned": {"model": weights if full else info.base_model, "adapter": None if full else weights, "system": tuned_system},
    }
    plan = ComparePlan(backend=backend, info=info, run_dir=run_dir, out_dir=out_dir, probes=probe_name,
                       questions=questions, base_system=variants["base"]["system"], max_new_tokens=max_new_tokens,
                       tuned=weights)
    for variant, options in variants.items():
        probes_file, result_file = f"data/probes_{variant}.jsonl", f"predictions_{variant}.jsonl"
        sections = backend.infer_sections({
            **common, "model": options["model"], "adapter": options["adapter"],
            "model_type": model_family(options["model"]).get("swift_model_type"),
            "probes_file": probes_file, "result_file": result_file,
        })
        invocation = backend.infer_invocation(out_dir, config_path(f"infer_{variant}"))
        relative, text = render_step_config(backend, f"infer_{variant}", "infer.yaml.j2", f"Inference ({variant})",
                                            sections, invocation)
        plan.steps.append(Step(variant=variant, invocation=invocation, result_file=result_file,
                               files={probes_file: _probe_file(questions, options["system"]), relative: text}))
    return plan


def _answers(path: Path, expected: int) -> list[str]:
    if not path.is_file():
        raise InputError("the backend wrote no predictions", location=Location(path))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) != expected:
        raise InputError(f"expected {expected} answers, got {len(rows)}", location=Location(path))
    return [str(row.get("response", "")).strip() for row in rows]


def run_compare(plan: ComparePlan, *, status_for=None) -> tuple[Path, Path]:
    """Both inference passes, then report.md and report.html in the compare folder."""
    answers = {}
    for step in plan.steps:
        status = status_for(step.variant) if status_for else None
        run_step(plan.backend, step.invocation, step.files, plan.out_dir / "compare.log", f"inference ({step.variant})", status)
        answers[step.variant] = _answers(plan.out_dir / step.result_file, len(plan.questions))
    rows = [{"question": q, "base": b, "tuned": t} for q, b, t in zip(plan.questions, answers["base"], answers["tuned"], strict=True)]
    context = {"run_id": plan.info.run_id, "backend": plan.backend.name, "method": plan.info.method,
               "base_model": plan.info.base_model, "tuned": plan.tuned, "probes": plan.probes, "rows": rows,
               "base_system": plan.base_system, "max_new_tokens": plan.max_new_tokens}
    markdown = atomic_write_text(plan.out_dir / "report.md", render("compare.md.j2", **context))
    html = atomic_write_text(plan.out_dir / "report.html", render("compare.html.j2", **context))
    # the machine-readable twin `stylewrap publish` reads for the model card's samples
    atomic_write_json(plan.out_dir / "report.json", {"run_id": plan.info.run_id, "base_system": plan.base_system,
                                                     "rows": rows})
    plan.info.compare_reports.append(str(markdown.relative_to(plan.run_dir)))
    plan.info.save(plan.run_dir)
    return markdown, html


def describe_compare(plan: ComparePlan) -> str:
    parts = []
    for step in plan.steps:
        parts.append(f"[{step.variant}]\n{describe(step.invocation)}")
        parts += [f"--- {plan.out_dir / name}\n{text.rstrip()}" for name, text in step.files.items()]
    return "\n".join(parts)
