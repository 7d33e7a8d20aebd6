"""Probe questions: a built-in set (templates/probes) or a user's .txt (one question a line) or
.jsonl (`question`, optional `answer` — a string or a list of accepted strings — and `kind`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stylewrap.errors import InputError, Location

DEFAULT_KIND = "everyday"


@dataclass(frozen=True)
class Probe:
    question: str
    kind: str = DEFAULT_KIND
    answers: tuple[str, ...] = ()   # accepted known answers; empty when the probe has none


def probes_folder():
    return resources.files("stylewrap.templates") / "probes"


def builtin_probe_sets() -> list[str]:
    names = {p.name.rsplit(".", 1)[0] for p in probes_folder().iterdir()
             if p.name.endswith((".txt", ".jsonl")) and ".system." not in p.name}
    return sorted(names)


def _from_text(text: str) -> list[Probe]:
    return [Probe(question=line.strip()) for line in text.splitlines() if line.strip()]


def _from_jsonl(text: str, source: str) -> list[Probe]:
    probes = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", location=Location(source, number)) from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise InputError('needs a non-empty "question"', location=Location(source, number, "question"))
        answer = row.get("answer")
        answers = [answer] if isinstance(answer, (str, int, float)) and not isinstance(answer, bool) else answer
        if answers is not None and (not isinstance(answers, list) or not answers
                                    or not all(isinstance(a, (str, int, float)) and str(a).strip() for a in answers)):
            raise InputError("must be a non-empty string or a list of them", location=Location(source, number, "answer"))
        kind = row.get("kind", DEFAULT_KIND)
        if not isinstance(kind, str) or not kind.strip():
            raise InputError("must be a non-empty string", location=Location(source, number, "kind"))
        probes.append(Probe(question=row["question"].strip(), kind=kind.strip(),
                            answers=tuple(str(a).strip() for a in answers or ())))
    return probes


def load_probes(name_or_path: str) -> tuple[str, list[Probe]]:
    """(the set's name or path, its probes)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        source, text, jsonl = str(path), path.read_text(encoding="utf-8"), path.suffix == ".jsonl"
    else:
        builtin = next((probes_folder() / f"{name_or_path}{ext}" for ext in (".jsonl", ".txt")
                        if (probes_folder() / f"{name_or_path}{ext}").is_file()), None)
        if builtin is None:
            raise InputError(f"no probe file or built-in probe set {name_or_path!r}",
                             hint=f"built-in: {', '.join(builtin_probe_sets())}; or a .txt/.jsonl path")
        source, text, jsonl = name_or_path, builtin.read_text(encoding="utf-8"), builtin.name.endswith(".jsonl")
    probes = _from_jsonl(text, source) if jsonl else _from_text(text)
    if not probes:
        raise InputError("no questions", location=Location(source))
    return source, probes


def style_prompt(value: str | None) -> str | None:
    """Text as given, or the system prompt shipped with a built-in probe set (e.g. "classical")."""
    if value is None:
        return None
    shipped = probes_folder() / f"{value}.system.txt"
    return shipped.read_text(encoding="utf-8").strip() if shipped.is_file() else value
