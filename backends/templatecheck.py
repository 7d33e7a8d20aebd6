"""The template consistency check: one conversation (a system prompt and two turns) rendered through
every path the model meets, compared token by token, the first difference reported.

Paths (each a `Rendering` of the whole conversation and/or the prompt before the last answer):
- train:   the training backend's own template code, as it tokenizes a training row (the unit's
           `template_probe` script, run in its env);
- merged:  the merged model's tokenizer `chat_template` (what vLLM/SGLang/transformers apply);
- serve:   the template the deploy server is started with, through the serving backend's code;
- ollama:  the run's Modelfile TEMPLATE/SYSTEM, rendered as Ollama does (`ollama.render_template`).
The reference is `train`; every other path must produce the same tokens (the same text where a
path has no tokenizer). `export`, `deploy` and `publish` call `require_consistent`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from stylewrap.backends import ollama
from stylewrap.backends.base import CONFIG_DIR, TableBackend
from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_json

REPORT_FILE = "template_check.json"
CHAT_TEMPLATE_SCRIPT = Path(__file__).with_name("_chat_template_probe.py")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

SYSTEM_PROMPT = "你是一位说话像古人的助手。"
# contents no template text contains, so `ollama.cut_pieces` finds each one
TURNS = (("你是谁？", "在下乃一介书生。"), ("今日天气如何？", "天朗气清，惠风和畅。"))


def conversation(system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system or SYSTEM_PROMPT}]
    for question, answer in TURNS:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages


@dataclass
class Rendering:
    path: str
    source: str                                # what was rendered: template name, file
    full: dict[str, Any] | None = None         # {"text", "tokens"?, "ids"?}: the whole conversation
    prompt: dict[str, Any] | None = None       # before the last answer, with the generation prompt


@dataclass
class Mismatch:
    path: str
    part: str                  # "full" | "prompt" | "stop"
    token_index: int | None
    expected: str              # the reference's token there
    found: str                 # this path's text there
    context: str               # reference text before it

    def line(self) -> str:
        where = f"token {self.token_index}" if self.token_index is not None else f"{self.part} prompt" \
            if self.part == "system" else "stop tokens"
        return (f"{self.path} differs from train ({self.part}, {where}): expected {self.expected!r}, "
                f"found {self.found!r} after {self.context!r}")


@dataclass
class TemplateReport:
    renderings: list[Rendering] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)      # path -> why it was not rendered
    fingerprint: str = ""      # of everything rendered: an unchanged run is not rendered again

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def lines(self) -> list[str]:
        checked = [r.path for r in self.renderings]
        verdict = ("agree" if self.ok else "DIFFER") if checked else "not run"
        lines = [f"template check: {', '.join(checked)} {verdict}".replace("  ", " ")]
        lines += [f"  {m.line()}" for m in self.mismatches]
        lines += [f"  {path}: not checked ({why})" for path, why in self.skipped.items()]
        return lines

    def save(self, run_dir: Path) -> Path:
        return atomic_write_json(Path(run_dir) / REPORT_FILE, asdict(self))


# ---------------------------------------------------------------- rendering each path


def _run_script(python: Path, script: Path, spec: Mapping[str, Any]) -> dict[str, Any]:
    from stylewrap.runner import run, script_invocation

    result = run(script_invocation(python, script, json.dumps(spec, ensure_ascii=False), env=OFFLINE), tail_lines=400)
    for line in reversed(result.tail):
        if line.startswith("{"):
            data = json.loads(line)
            if "error" in data:
                raise InputError(data["error"])
            return data
    raise RunFailed(f"{script.name} failed: {' | '.join(result.tail[-3:]) or 'no output'}")


def backend_rendering(backend: TableBackend, path: str, *, model: str, template: str, model_type: str | None,
                      options: Mapping[str, Any], messages: Sequence[dict[str, str]]) -> tuple[Rendering, dict]:
    """`messages` through `backend`'s own template code; also returns the probe's stop words and default system."""
    probe, python = backend.template_probe, backend.python()
    if probe is None or python is None:
        raise InputError(f"{backend.name} cannot render templates here", hint=f"stylewrap backend install {backend.name}")
    spec = {"model": model, "template": template, "model_type": model_type, "messages": list(messages),
            "options": {key: options[key] for key in probe.train_keys if options.get(key) is not None}}
    data = _run_script(python, probe.script, spec)
    return Rendering(path, f"{backend.name} template {template}", full=data["train"], prompt=data["prompt"]), data


def chat_template_rendering(python: Path, model_dir: Path, messages: Sequence[dict[str, str]]) -> Rendering:
    data = _run_script(python, CHAT_TEMPLATE_SCRIPT, {"model": str(model_dir), "messages": list(messages)})
    return Rendering("merged", f"{model_dir}/tokenizer chat_template", full=data["full"], prompt=data["prompt"])


def ollama_rendering(modelfile: Path, messages: Sequence[dict[str, str]]) -> Rendering:
    parsed = ollama.parse_modelfile(modelfile.read_text(encoding="utf-8"))
    if parsed["template"] is None:
        raise InputError("the Modelfile has no TEMPLATE", location=Location(modelfile))
    # Ollama fills .System from the request's system message, else the Modelfile's SYSTEM
    system = next((m["content"] for m in messages if m["role"] == "system"), parsed["system"])
    turns = [m for m in messages if m["role"] != "system"]
    return Rendering("ollama", str(modelfile),
                     full={"text": ollama.render_template(parsed["template"], system, turns)},
                     prompt={"text": ollama.render_template(parsed["template"], system, turns[:-1])})


# ---------------------------------------------------------------- comparing


def first_difference(reference: Mapping[str, Any], other: Mapping[str, Any], path: str, part: str) -> Mismatch | None:
    """Ids where both paths tokenized, else text; located at the reference's token."""
    tokens = reference.get("tokens") or [reference["text"]]
    if reference.get("ids") is not None and other.get("ids") is not None:
        ids, other_ids = reference["ids"], other["ids"]
        for index, token_id in enumerate(ids):
            if index >= len(other_ids) or other_ids[index] != token_id:
                found = other["tokens"][index] if index < len(other_ids) else "(end)"
                return Mismatch(path, part, index, tokens[index], found, "".join(tokens[max(0, index - 6):index]))
        if len(other_ids) > len(ids):
            return Mismatch(path, part, len(ids), "(end)", other["tokens"][len(ids)], "".join(tokens[-6:]))
        return None
    text, other_text = reference.get("text") or "".join(tokens), other["text"]
    if text == other_text:
        return None
    offset = next((i for i, (a, b) in enumerate(zip(text, other_text)) if a != b), min(len(text), len(other_text)))
    consumed = 0
    for index, token in enumerate(tokens):
        if consumed + len(token) > offset:
            return Mismatch(path, part, index, token, other_text[consumed:consumed + max(len(token), 1)] or "(end)",
                            text[max(0, consumed - 30):consumed])
        consumed += len(token)
    return Mismatch(path, part, len(tokens), "(end)", other_text[len(text):len(text) + 10], text[-30:])


def compare(reference: Rendering, others: Sequence[Rendering]) -> list[Mismatch]:
    found = []
    for other in others:
        for part in ("full", "prompt"):
            ours, theirs = getattr(reference, part), getattr(other, part)
            if ours is not None and theirs is not None:
                mismatch = first_difference(ours, theirs, other.path, part)
                if mismatch is not None:
                    found.append(mismatch)
                    break
    return found


def stop_mismatch(reference: Rendering, stops: Sequence[str], path: str) -> Mismatch | None:
    """Generation must stop where training taught the answer to end: the text right after the last
    answer must begin with one of `stops`, or the model talks on into the next turn."""
    text = reference.full["text"] if "text" in reference.full else "".join(reference.full["tokens"])
    ending = text[text.rfind(TURNS[-1][1]) + len(TURNS[-1][1]):]
    if not ending.strip() or any(stop and ending.startswith(stop) for stop in stops):
        return None
    return Mismatch(path, "stop", None, ending.strip()[:20], ", ".join(stops) or "(none)", TURNS[-1][1])


# ---------------------------------------------------------------- a run


def train_options(run_dir: Path) -> dict[str, Any]:
    """The run's rendered train config, flattened (the keys a unit's `template_probe` reads)."""
    import yaml

    path = Path(run_dir) / CONFIG_DIR / "train.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {key: value for key, value in data.items() if not isinstance(value, dict)}


def _fingerprint(*parts: Any) -> str:
    import hashlib

    def state(part: Any) -> Any:
        if isinstance(part, Path):
            files = [part] if part.is_file() else sorted(part.glob("*token*")) + sorted(part.glob("*.jinja"))
            return [(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file()]
        return part

    text = json.dumps([state(part) for part in parts], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def require_consistent(report: TemplateReport, *, allow: bool, action: str) -> None:
    if report.ok or allow:
        return
    raise InputError(f"{action} refused: the chat template differs between paths\n" + "\n".join(report.lines()),
                     hint="fix the template (train.template / deploy.template) or pass --allow-template-mismatch")


def check_run(run_dir: Path, backend: TableBackend, *, base_model: str, template: str, model_type: str | None,
              system: str | None, merged_dir: Path | None = None, serve: tuple[TableBackend, str] | None = None,
              modelfile: Path | None = None, trained: tuple[Rendering, dict] | None = None) -> TemplateReport:
    """Every path that exists for this run against its training template; the report is saved in the run."""
    messages = conversation(system)
    options = train_options(run_dir)
    fingerprint = _fingerprint(backend.name, base_model, template, model_type, messages, options, merged_dir,
                               serve and (serve[0].name, serve[1]), modelfile)
    saved = Path(run_dir) / REPORT_FILE
    if saved.is_file():
        data = json.loads(saved.read_text(encoding="utf-8"))
        if data.get("fingerprint") == fingerprint:
            return TemplateReport(renderings=[Rendering(**r) for r in data["renderings"]],
                                  mismatches=[Mismatch(**m) for m in data["mismatches"]], skipped=data["skipped"],
                                  fingerprint=fingerprint)
    report = TemplateReport(fingerprint=fingerprint)
    tokenizer_here = Path(base_model).is_dir() and any((Path(base_model) / name).is_file()
                                                       for name in ("tokenizer_config.json", "tokenizer.json"))
    if trained is None and not tokenizer_here:
        # a run trained elsewhere, or on a hub id: nothing here to render the training template with
        report.skipped["all paths"] = f"the base model's tokenizer is not on this machine ({base_model})"
        return report
    reference, _ = trained or backend_rendering(backend, "train", model=base_model, template=template,
                                                model_type=model_type, options=options, messages=messages)
    report.renderings.append(reference)
    others: list[Rendering] = []
    if merged_dir is not None and (merged_dir / "config.json").is_file():
        others.append(chat_template_rendering(backend.python(), merged_dir, messages))
    else:
        report.skipped["merged"] = "no merged model yet (stylewrap export)"
    if serve is not None:
        serve_backend, serve_template = serve
        if serve_backend.name == backend.name and serve_template == template:
            # the same code with the same template name: its prompt is the one already rendered
            others.append(Rendering("serve", f"{serve_backend.name} template {serve_template}", prompt=reference.prompt))
        else:
            served, _ = backend_rendering(serve_backend, "serve", model=base_model, template=serve_template,
                                          model_type=model_type, options={}, messages=messages)
            others.append(Rendering("serve", served.source, prompt=served.prompt))
    if modelfile is not None:
        others.append(ollama_rendering(modelfile, messages))
        parsed = ollama.parse_modelfile(modelfile.read_text(encoding="utf-8"))
        stop = stop_mismatch(reference, parsed["stops"], "ollama")
        if stop is not None:
            report.mismatches.append(stop)
        if system and parsed["system"] != system:
            # a request without a system message gets the Modelfile's: it must be the one trained with
            report.mismatches.append(Mismatch("ollama", "system", None, system, parsed["system"] or "(none)", "SYSTEM"))
    report.renderings += others
    report.mismatches[:0] = compare(reference, others)
    report.save(run_dir)
    return report
