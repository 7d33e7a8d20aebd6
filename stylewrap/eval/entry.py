"""`stylewrap eval` (and `stylewrap compare`, its view of one run): plan what answers, let every
variant answer every probe, score, judge, and write eval.json, report.md and report.html.

The measuring libraries (scikit-learn, sacrebleu, numpy, matplotlib) are the optional extra
`stylewrap[eval]`; `compare` still writes its side-by-side report without them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from stylewrap.config import StylewrapConfig
from stylewrap.datagen.styles import Style, load_style
from stylewrap.errors import InputError
from stylewrap.eval.probes import Probe, load_probes, style_prompt
from stylewrap.eval.variants import (RunInference, Variant, answer_with_endpoint, answer_with_run,
                                     describe_run_inference, endpoint_settings, endpoint_variants, plan_run_inference)
from stylewrap.rundir import RunInfo

EXTRA_MODULES = {"sklearn": "scikit-learn", "sacrebleu": "sacrebleu", "numpy": "numpy", "matplotlib": "matplotlib"}
INSTALL_HINT = "pip install 'stylewrap[eval]'"


class MissingExtra(InputError):
    """The eval extra is not installed: the user installs it and runs the same command again."""


def missing_extra() -> list[str]:
    return [dist for module, dist in EXTRA_MODULES.items() if importlib.util.find_spec(module) is None]


def require_extra() -> None:
    missing = missing_extra()
    if missing:
        raise MissingExtra(f"stylewrap eval needs {', '.join(missing)}: {INSTALL_HINT}")


@dataclass
class EvalRequest:
    run_dir: Path | None = None
    endpoint: str | None = None
    models: list[str] = field(default_factory=list)
    system: str | None = None               # endpoint models' system prompt
    api_key_env: str = "OPENAI_API_KEY"
    style: str | None = None                # preset name or YAML; default: the config's
    style_system: str | None = None         # the base+style variant's prompt; default: the preset's
    probes: str | None = None               # default: the style's probe set
    style_data: Path | None = None
    judge_model: str | None = None
    persona: str | None = None
    out_dir: Path | None = None
    seed: int = 0
    max_new_tokens: int = 128
    template: str | None = None             # chat template for a run's variants; default: the run's
    reference: str | None = None            # the variant others are compared with; default base
    report_kind: str = "eval"               # "compare": the same report, named after the command
    checkpoint: str | None = None           # N, best or last (default): which weights of the run are "tuned"


@dataclass
class EvalPlan:
    request: EvalRequest
    config: StylewrapConfig
    preset: Style
    probe_source: str
    probes: list[Probe]
    out_dir: Path
    run: RunInference | None
    endpoint_variants: list[Variant]
    style_data: Path | None
    persona: str | None
    measure: bool                           # the extra is installed: metrics, chart and judge
    reference: str                          # the variant chrF, length ratio and the judge compare with
    judge_settings: object | None           # datagen's client settings for --judge-model, checked up front

    @property
    def variants(self) -> list[Variant]:
        return (self.run.variants if self.run else []) + self.endpoint_variants


def _style_system(request: EvalRequest, config: StylewrapConfig, preset: Style) -> str:
    given = style_prompt(request.style_system) or config.style.system_prompt or preset.system_prompt
    return given or f"请用「{preset.title}」的风格回答。{preset.style_guide}"


def _style_data(request: EvalRequest, config: StylewrapConfig) -> Path | None:
    from stylewrap.eval.styledata import find_style_data

    if request.style_data:
        return Path(request.style_data)
    candidates = []
    if request.run_dir:
        dataset = RunInfo.load(request.run_dir).dataset
        candidates += [Path(dataset[key]).parent for key in ("source", "path") if dataset.get(key)]
    candidates.append(Path(config.datagen.output_dir))
    return find_style_data(candidates)


def plan_eval(request: EvalRequest, config: StylewrapConfig, *, measure: bool = True) -> EvalPlan:
    """Everything decided before any model runs: bad input fails here, nothing written yet."""
    if measure:
        require_extra()
    if request.models and not request.endpoint:
        raise InputError("--model needs --endpoint URL")
    if not request.run_dir and not request.endpoint:
        raise InputError("nothing to evaluate: give a RUN_DIR, or --endpoint URL with --model NAME")
    preset = load_style(request.style or config.style.preset)
    probe_source, probes = load_probes(request.probes or preset.probes)
    folder = request.report_kind if request.report_kind == "compare" else "eval"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(request.out_dir) if request.out_dir else (Path(request.run_dir) / folder / stamp if request.run_dir
                                                            else Path(folder) / stamp)
    run = None
    if request.run_dir:
        run = plan_run_inference(Path(request.run_dir), config, [p.question for p in probes], out_dir,
                                 style_system=_style_system(request, config, preset),
                                 max_new_tokens=request.max_new_tokens, checkpoint=request.checkpoint,
                                 template=request.template)
    endpoints = endpoint_variants(request.endpoint, request.models, request.system) if request.endpoint else []
    names = [v.name for v in (run.variants if run else [])] + [v.name for v in endpoints]
    if len(set(names)) != len(names):
        raise InputError(f"two variants share a name: {', '.join(names)}")
    if request.judge_model and not measure:
        raise InputError("--judge-model needs the eval extra")
    reference = request.reference or ("base" if "base" in names else names[0])
    if reference not in names:
        raise InputError(f"--reference {reference!r} is not one of the variants: {', '.join(names)}")
    return EvalPlan(request=request, config=config, preset=preset, probe_source=probe_source, probes=probes,
                    out_dir=out_dir, run=run, endpoint_variants=endpoints,
                    style_data=_style_data(request, config) if measure else None,
                    persona=request.persona or config.style.persona, measure=measure, reference=reference,
                    judge_settings=_judge_settings(config, request.judge_model) if request.judge_model else None)


def _judge_settings(config: StylewrapConfig, model: str):
    """datagen's endpoint, key and retry policy, at temperature 0; a missing key fails before any model runs."""
    from stylewrap.datagen.pipeline import client_settings

    return replace(client_settings(config), model=model, temperature=0.0, max_tokens=400,
                   concurrency=min(config.datagen.concurrency, 16), json_mode=True)


def describe_eval(plan: EvalPlan) -> str:
    lines = [f"probes: {plan.probe_source} ({len(plan.probes)})", f"style: {plan.preset.name}",
             f"reference: {plan.reference}", f"out: {plan.out_dir}"]
    if plan.run:
        lines.append(describe_run_inference(plan.run))
    for variant in plan.endpoint_variants:
        lines.append(f"[{variant.name}] {variant.endpoint} model={variant.model}"
                     + (f" system={variant.system!r}" if variant.system else ""))
    return "\n".join(lines)


def _answers(plan: EvalPlan, console) -> dict[str, list[str]]:
    from rich.progress import Progress

    questions = [p.question for p in plan.probes]
    answers: dict[str, list[str]] = {}
    if plan.run:
        answers.update(answer_with_run(plan.run, len(questions), status_for=lambda name: console.status(
            f"{plan.run.backend.name}: {name} answering {len(questions)} probes")))
    if plan.endpoint_variants:
        settings = endpoint_settings(plan.config, plan.request.endpoint, plan.request.api_key_env,
                                     plan.request.max_new_tokens)
        with Progress(console=console, transient=True) as bar:
            for variant in plan.endpoint_variants:
                task = bar.add_task(variant.name, total=len(questions))
                answers[variant.name] = answer_with_endpoint(variant, questions, settings, seed=plan.request.seed,
                                                             progress=lambda task=task: bar.advance(task))
    return {v.name: answers[v.name] for v in plan.variants}


def _judge(plan: EvalPlan, answers: dict[str, list[str]], console) -> tuple[dict, dict]:
    from rich.progress import Progress

    from stylewrap.eval.judge import Judge, default_cache_dir

    settings = plan.judge_settings
    judge = Judge(settings=settings, preset=plan.preset, cache_dir=default_cache_dir())
    reference = answers[plan.reference]
    items, owners = [], []
    for name, texts in answers.items():
        if name != plan.reference:
            items += [(p.question, r, t) for p, r, t in zip(plan.probes, reference, texts, strict=True)]
            owners.append(name)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"judge {settings.model}", total=len(items))
        results = judge.judge(items, progress=lambda: bar.advance(task))
    size = len(plan.probes)
    judged = {name: results[i * size:(i + 1) * size] for i, name in enumerate(owners)}
    stats = judge.stats
    return judged, {"model": settings.model, "rubric_version": judge.rubric["version"], "calls": stats.calls,
                    "cached": stats.cached, "malformed": stats.malformed, "missing": stats.missing,
                    "position_flips": stats.position_flips}


@dataclass
class EvalResult:
    out_dir: Path
    eval_json: Path
    markdown: Path
    html: Path
    summary: dict


def run_eval(plan: EvalPlan, *, console=None) -> EvalResult:
    from rich.console import Console

    from stylewrap.eval.report import write_reports

    console = console or Console(stderr=True)
    answers = _answers(plan, console)
    result: dict = {"variants": {}, "probes": len(plan.probes), "probe_set": plan.probe_source,
                    "style": plan.preset.name, "markers": plan.preset.markers, "reference": plan.reference,
                    "seed": plan.request.seed, "persona": plan.persona, "run": None, "classifier": None, "judge": None,
                    "variant_info": {v.name: {"origin": v.origin, "model": v.model, "adapter": v.adapter,
                                              "endpoint": v.endpoint, "system": v.system} for v in plan.variants},
                    "rows": [{"question": p.question, "kind": p.kind, "known_answer": list(p.answers),
                              "variants": {name: {"answer": texts[i]} for name, texts in answers.items()}}
                             for i, p in enumerate(plan.probes)]}
    if plan.run:
        result["run"] = {"run_id": plan.run.info.run_id, "backend": plan.run.backend.name,
                         "method": plan.run.info.method, "base_model": plan.run.info.base_model,
                         "max_new_tokens": plan.request.max_new_tokens, **run_facts(plan.run.run_dir, plan.run.info)}
    if plan.measure:
        result.update(_measure(plan, answers, console))
    else:   # flags and highlighted markers need no extra: `compare` shows them anyway
        from stylewrap.eval.metrics import flags, marker_spans

        for row in result["rows"]:
            for detail in row["variants"].values():
                detail.update(flags=flags(detail["answer"]),
                              marker_spans=marker_spans(detail["answer"], tuple(plan.preset.markers)))
    written = write_reports(plan.out_dir, result, kind=plan.request.report_kind, chart=plan.measure)
    if plan.run:   # listed in the run, so `publish model` puts the table in the card
        info = RunInfo.load(plan.run.run_dir)
        markdown, run_dir = written["markdown"].resolve(), plan.run.run_dir.resolve()
        info.compare_reports.append(str(markdown.relative_to(run_dir) if markdown.is_relative_to(run_dir) else markdown))
        info.save(plan.run.run_dir)
    return EvalResult(out_dir=plan.out_dir, eval_json=written["json"], markdown=written["markdown"],
                      html=written["html"], summary=result)


def run_facts(run_dir: Path, info: RunInfo) -> dict:
    """What the report opens with about the training run: how it went and its loss curve."""
    metrics, settings = info.metrics, info.hyperparameters
    keys = ("learning_rate", "num_train_epochs", "max_steps", "lora_rank", "per_device_train_batch_size",
            "gradient_accumulation_steps")
    return {"status": info.status, "created_at": info.created_at, "finished_at": info.finished_at,
            "dataset": {k: info.dataset.get(k) for k in ("name", "rows", "source", "path", "added", "mix") if info.dataset.get(k)},
            "steps": metrics.get("steps"), "first_loss": metrics.get("first_loss"), "final_loss": metrics.get("final_loss"),
            "eval_loss": metrics.get("eval_loss"), "runtime_s": metrics.get("backend_seconds"),
            "settings": {k: settings[k] for k in keys if settings.get(k) is not None},
            "checkpoint": info.extra.get("checkpoint"),
            "loss_png": str(Path(run_dir) / info.loss_png) if info.loss_png and (Path(run_dir) / info.loss_png).is_file() else None}


def _measure(plan: EvalPlan, answers: dict[str, list[str]], console) -> dict:
    from stylewrap.eval.classifier import train_style_classifier
    from stylewrap.eval.scoring import score_answers
    from stylewrap.eval.styledata import load_style_pairs

    out: dict = {}
    p_style = None
    if plan.style_data:
        with console.status("training the p_style classifier"):
            source, pairs = load_style_pairs(plan.style_data)
            classifier = train_style_classifier(pairs, source=source, seed=plan.request.seed)
        p_style = {name: classifier.p_style(texts) for name, texts in answers.items()}
        out["classifier"] = {"source": source, "held_out_auc": classifier.auc, "train_rows": classifier.train_rows,
                             "held_out_rows": classifier.held_out_rows}
    judged = None
    if plan.request.judge_model:
        judged, out["judge"] = _judge(plan, answers, console)
    summary, rows = score_answers(plan.probes, answers, reference=plan.reference, markers=tuple(plan.preset.markers),
                                  p_style=p_style, persona=plan.persona, judged=judged, seed=plan.request.seed)
    out["variants"] = summary
    out["rows"] = rows
    return out
