"""Rows added to a run's training data besides the style rows: self-cognition rows with the
configured identity (`style.identity`) and general-purpose rows against forgetting (`data.mix`).

Both are plain records, so they reach either backend the same way, through the run's converted
dataset; `run.json` counts each source (`dataset.added`).
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Iterator

from stylewrap.adapters.records import Record
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError, Location
from stylewrap.identitynames import contradictions, fill


def builtin_identity_file() -> Path:
    return Path(str(resources.files("stylewrap.templates") / "identity" / "identity.jsonl"))


def identity_rows(config: StylewrapConfig) -> list[Record]:
    """The self-cognition rows with the placeholders filled; a row left with a placeholder is an error."""
    from stylewrap.adapters import read_records

    identity = config.style.identity
    source = config.resolve_path(identity.file) if identity.file else builtin_identity_file()
    if source is None or not source.is_file():
        raise InputError("identity file not found", location=Location(identity.file, field="style.identity.file"))
    rows = []
    for record in read_records(source):
        # LLaMA-Factory's identity.json spells them {{name}}/{{author}}; ms-swift's self-cognition {{NAME}}/{{AUTHOR}}
        messages = [{**m, "content": fill(str(m.get("content") or ""), identity.name, identity.author)}
                    for m in record.messages]
        if any("{{" in m["content"] for m in messages):
            raise InputError("a placeholder other than {{name}}/{{author}} is left",
                             location=Location(source, record.line, field="style.identity.file"))
        rows.append(Record(messages=messages, tools=record.tools, meta={**record.meta, "source": "identity"}))
    return rows


def check_row_systems(rows: list[Record], source: Path, config: StylewrapConfig) -> None:
    """A style row whose own system message names the model otherwise contradicts the identity rows
    trained beside it (the model learns both names)."""
    identity = config.style.identity
    if identity is None:
        return
    for record in rows:
        for message in record.messages:
            if message.get("role") != "system":
                continue
            for _, problem in contradictions(identity.name, None, str(message.get("content") or "")):
                raise InputError(problem.replace("the system prompt", "this row's system message"),
                                 location=Location(source, record.line, field="messages[system]"),
                                 hint="drop or fix the system message, or change style.identity.name")


def general_rows(config: StylewrapConfig, style_rows: int) -> Iterator[tuple[str, list[Record]]]:
    """(source, rows) for each `data.mix` entry: ratio x style_rows rows, sampled with train.seed."""
    from stylewrap.adapters import read_records

    for index, entry in enumerate(config.data.mix):
        where = Location(entry.file, field=f"data.mix[{index}].file")
        source = config.resolve_path(entry.file)
        if source is None or not source.is_file():
            raise InputError("mix file not found", location=where,
                             hint="data.mix takes files stylewrap reads (`stylewrap data stats FILE`)")
        rows = list(read_records(source))
        wanted = max(1, round(entry.ratio * style_rows))
        rng = random.Random(config.train.seed + index)
        # with replacement only when the file is smaller than asked for
        picked = rng.sample(rows, wanted) if wanted <= len(rows) else [rng.choice(rows) for _ in range(wanted)]
        yield str(source), [Record(messages=r.messages, tools=r.tools, meta={**r.meta, "source": "mix"}) for r in picked]
