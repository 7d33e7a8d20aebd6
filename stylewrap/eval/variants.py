"""The models under test and how each one answers the probes.

- A run directory gives three variants through the run's own backend, one batch inference each
  (greedy, as the tutorials compared): `base` (the base model as it is), `base+style` (the base
  model told the style in a system prompt) and `tuned` (the trained adapter or full weights).
- An endpoint gives one variant a model name, asked through datagen's OpenAI client (retries,
  backoff, one connection pool) at temperature 0, optionally with a system prompt.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from stylewrap.backends.base import TableBackend, get_backend
from stylewrap.backends.modelinfo import model_family
from stylewrap.backends.steps import config_path, render_step_config, run_step
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError, Location
from stylewrap.rundir import RunInfo, load_run
from stylewrap.runner import Invocation, describe
from stylewrap.secrets import get_secret

ENDPOINT_CONCURRENCY = 8


@dataclass
class Variant:
    name: str
    origin: str                 # "run" | "endpoint"
    model: str                  # what answers: weights path / hub id, or the endpoint's model name
    system: str | None = None
    adapter: str | None = None
    endpoint: str | None = None


@dataclass
class InferenceStep:
    variant: Variant
    invocation: Invocation
    files: dict[str, str]
    result_file: str


@dataclass
class RunInference:
    """A run's variants as backend batch-inference steps, their files under `out_dir`."""

    backend: TableBackend
    info: RunInfo
    run_dir: Path
    out_dir: Path
    max_new_tokens: int
    steps: list[InferenceStep] = field(default_factory=list)

    @property
    def variants(self) -> list[Variant]:
        return [step.variant for step in self.steps]


def _probe_file(questions: list[str], system: str | None) -> str:
    rows = []
    for question in questions:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        rows.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return "\n".join(rows) + "\n"


def _file_stem(name: str) -> str:
    return name.replace("+", "_")


def plan_run_inference(run_dir: Path, config: StylewrapConfig, questions: list[str], out_dir: Path, *,
                       style_system: str | None, max_new_tokens: int, checkpoint: str | None = None,
                       template: str | None = None) -> RunInference:
    """`template` prompts every variant with another chat template than the run was trained with
    (a negative control: a model trained with the wrong template answers its own badly)."""
    run_dir = Path(run_dir)
    info = load_run(run_dir, checkpoint)
    if not info.adapter_dir or not (run_dir / info.adapter_dir).is_dir():
        raise InputError("this run has no trained weights to evaluate", location=Location(run_dir / "run.json", field="adapter_dir"))
    backend = get_backend(info.backend, config)
    weights = str((run_dir / info.adapter_dir).resolve())
    full = info.method == "full"
    variants = [Variant("base", "run", info.base_model)]
    if style_system:
        variants.append(Variant("base+style", "run", info.base_model, system=style_system))
    variants.append(Variant("tuned", "run", weights if full else info.base_model, adapter=None if full else weights,
                            system=info.hyperparameters.get("system")))
    plan = RunInference(backend=backend, info=info, run_dir=run_dir, out_dir=out_dir, max_new_tokens=max_new_tokens)
    # no cutoff: ms-swift refuses (MaxLengthError) a prompt longer than max_length at inference
    common = {"template": template or info.template, "max_new_tokens": max_new_tokens}
    for variant in variants:
        stem = _file_stem(variant.name)
        probes_file, result_file = f"data/probes_{stem}.jsonl", f"predictions_{stem}.jsonl"
        sections = backend.infer_sections({
            **common, "model": variant.model, "adapter": variant.adapter,
            "model_type": model_family(variant.model).get("swift_model_type"),
            "probes_file": probes_file, "result_file": result_file,
        })
        invocation = backend.infer_invocation(out_dir, config_path(f"infer_{stem}"))
        relative, text = render_step_config(backend, f"infer_{stem}", "infer.yaml.j2", f"Inference ({variant.name})",
                                            sections, invocation)
        plan.steps.append(InferenceStep(variant=variant, invocation=invocation, result_file=result_file,
                                        files={probes_file: _probe_file(questions, variant.system), relative: text}))
    return plan


def describe_run_inference(plan: RunInference) -> str:
    parts = []
    for step in plan.steps:
        parts.append(f"[{step.variant.name}]\n{describe(step.invocation)}")
        parts += [f"--- {plan.out_dir / name}\n{text.rstrip()}" for name, text in step.files.items()]
    return "\n".join(parts)


def _predictions(path: Path, expected: int) -> list[str]:
    if not path.is_file():
        raise InputError("the backend wrote no predictions", location=Location(path))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) != expected:
        raise InputError(f"expected {expected} answers, got {len(rows)}", location=Location(path))
    return [str(row.get("response", "")).strip() for row in rows]


def answer_with_run(plan: RunInference, expected: int, status_for=None) -> dict[str, list[str]]:
    answers = {}
    for step in plan.steps:
        status = status_for(step.variant.name) if status_for else None
        run_step(plan.backend, step.invocation, step.files, plan.out_dir / "inference.log",
                 f"inference ({step.variant.name})", status)
        answers[step.variant.name] = _predictions(plan.out_dir / step.result_file, expected)
    return answers


def endpoint_variants(endpoint: str, models: list[str], system: str | None) -> list[Variant]:
    if not models:
        raise InputError("--endpoint needs at least one --model")
    suffix = "+system" if system else ""
    return [Variant(f"{model}{suffix}", "endpoint", model, system=system, endpoint=endpoint) for model in models]


def endpoint_settings(config: StylewrapConfig, endpoint: str, api_key_env: str, max_new_tokens: int):
    from stylewrap.datagen.client import ClientSettings

    settings = config.datagen
    # a local `stylewrap deploy` server may take no key; the SDK still wants a string
    return ClientSettings(model="", api_key=get_secret(api_key_env) or "no-key", base_url=endpoint,
                          timeout=settings.request_timeout, max_retries=settings.max_retries,
                          concurrency=ENDPOINT_CONCURRENCY, temperature=0.0, max_tokens=max_new_tokens,
                          json_mode=False, backoff_base=settings.retry_backoff)


def answer_with_endpoint(variant: Variant, questions: list[str], settings, *, seed: int, progress=None) -> list[str]:
    from stylewrap.datagen.client import ChatClient, RequestFailed

    async def ask_all() -> list[str]:
        gate = asyncio.Semaphore(settings.concurrency)
        async with ChatClient(replace(settings, model=variant.model)) as client:
            await client.preflight()

            async def ask(question: str) -> str:
                messages = ([{"role": "system", "content": variant.system}] if variant.system else [])
                messages.append({"role": "user", "content": question})
                async with gate:
                    try:
                        completion = await client.complete(messages, json_object=False, stage="eval", seed=seed)
                    except RequestFailed as exc:
                        raise InputError(f"{variant.endpoint}: {variant.model} did not answer: {exc.reason}") from None
                if progress:
                    progress()
                return completion.text.strip()

            return await asyncio.gather(*(ask(q) for q in questions))

    return asyncio.run(ask_all())
