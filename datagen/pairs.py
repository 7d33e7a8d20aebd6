"""pairs.jsonl: for every stylized answer, the pair (chosen = the styled answer, rejected = the plain
one it was rewritten from), with no extra request: the stylize checkpoint keeps both (rows written
before it kept the plain answer find it in dialogues.jsonl by source id).

One pair per assistant turn; the question's context is the styled conversation before it (the
style the model should keep up). Turns whose two answers read the same, and rows whose plain
answer is kept nowhere, are counted in the manifest, never silently left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from stylewrap.datagen.engine import StageCounts
from stylewrap.datagen.sink import read_checkpoint

PAIRS_FILE = "pairs.jsonl"


def _plain_by_source(dialogues: Path) -> dict[str, list[dict]]:
    return {row["id"]: row["messages"] for row in read_checkpoint(dialogues) if "id" in row and "messages" in row}


def _answers(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


def pair_records(stylized: list[dict], dialogues: Path, system: str | None, counts: StageCounts) -> Iterator:
    from stylewrap.adapters import Record
    from stylewrap.adapters.preference import pair_record, same_text

    plain_of = None
    for row in stylized:
        styled = [m for m in row["messages"] if m["role"] != "system"]
        plain = row.get("plain")
        if plain is None:
            plain_of = plain_of if plain_of is not None else _plain_by_source(dialogues)
            plain = plain_of.get(row.get("source_id"))
        styled_answers = _answers(styled)
        counts.requested += len(styled_answers)
        plain_answers = _answers(plain or [])
        if len(plain_answers) != len(styled_answers):
            counts.errors += len(styled_answers)
            continue
        prefix = [{"role": "system", "content": system}] if system else []
        for turn, (chosen, rejected) in enumerate(zip(styled_answers, plain_answers)):
            if same_text(chosen, rejected):
                counts.skipped += 1
                continue
            prompt = [*prefix, *styled[: 2 * turn + 1]]
            counts.done += 1
            yield pair_record(prompt, chosen, rejected, {"id": row["id"], "turn": turn + 1})


def write_pairs(out_dir: Path, stylized: list[dict], dialogues: Path, system: str | None) -> StageCounts:
    """Write out_dir/pairs.jsonl; counts: requested = answers, done = pairs, skipped = same answer
    both sides, errors = answers whose plain twin is kept nowhere."""
    from stylewrap.adapters import write_records

    counts = StageCounts()
    write_records(pair_records(stylized, dialogues, system, counts), out_dir / PAIRS_FILE, "pairs")
    return counts
