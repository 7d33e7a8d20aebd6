"""`stylewrap data pairs`: preference pairs from two files of answers to the same questions (the
styled answers chosen, the plain ones rejected), rows matched by their question.

A question asked several times is matched occurrence by occurrence, in file order (the seed's
plain file asks "你有宠物吗？" 314 times). Nothing is dropped without a word: rows left without a
partner and pairs whose two answers read the same are counted and listed in the report.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from stylewrap.adapters.files import read_records, write_records
from stylewrap.adapters.preference import pair_record, prompt_of, question_of, same_text
from stylewrap.adapters.records import ASSISTANT, Record
from stylewrap.adapters.stats import record_key
from stylewrap.errors import DataError, InputError, Location

EXAMPLES = 5


@dataclass(frozen=True)
class Leftover:
    """A row that made no pair: where it is and its question."""

    path: Path
    line: int | None
    question: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}: {self.question[:60]}"


@dataclass
class PairingReport:
    output: Path
    fmt: str
    chosen_rows: int = 0
    rejected_rows: int = 0
    pairs: int = 0
    unmatched_chosen: list[Leftover] = field(default_factory=list)
    unmatched_rejected: list[Leftover] = field(default_factory=list)
    identical: list[Leftover] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"wrote {self.pairs} pairs ({self.fmt}) to {self.output} from {self.chosen_rows} chosen and "
               f"{self.rejected_rows} rejected rows"]
        for label, items in (("chosen rows without a rejected answer to the same question", self.unmatched_chosen),
                             ("rejected rows without a chosen answer to the same question", self.unmatched_rejected),
                             ("pairs left out because both answers read the same", self.identical)):
            if items:
                out.append(f"{len(items)} {label}, e.g.:")
                out += [f"  {item}" for item in items[:EXAMPLES]]
        return out


def _last_answer_record(record: Record, path: Path) -> Record:
    if record.messages[-1]["role"] != ASSISTANT:
        raise DataError("the row does not end with an assistant answer", location=Location(path, record.line))
    return record


def build_pairs(chosen: str | Path, rejected: str | Path, output: str | Path, *, chosen_format: str | None = None,
                rejected_format: str | None = None, to: str = "pairs") -> PairingReport:
    """Write the pairs (chosen prompt and answer, the rejected file's answer) to `output` in format `to`."""
    chosen, rejected, output = Path(chosen), Path(rejected), Path(output)
    for path in (chosen, rejected):
        if output.exists() and path.exists() and output.resolve() == path.resolve():
            raise InputError(f"{output}: the output would overwrite an input", hint="pick another output path")
    report = PairingReport(output=output, fmt=to)
    waiting: dict[int, deque[Record]] = defaultdict(deque)
    for record in read_records(rejected, rejected_format):
        report.rejected_rows += 1
        waiting[record_key(_last_answer_record(record, rejected), normalized=True, prompt_only=True)].append(record)

    def pairs() -> Iterator[Record]:
        for record in read_records(chosen, chosen_format):
            report.chosen_rows += 1
            _last_answer_record(record, chosen)
            queue = waiting.get(record_key(record, normalized=True, prompt_only=True))
            if not queue:
                report.unmatched_chosen.append(Leftover(chosen, record.line, question_of(record), "no match"))
                continue
            partner = queue.popleft()
            chosen_answer, rejected_answer = record.messages[-1]["content"], partner.messages[-1]["content"]
            if same_text(chosen_answer, rejected_answer):
                report.identical.append(Leftover(chosen, record.line, question_of(record),
                                                 f"same answer as {rejected}:{partner.line}"))
                continue
            report.pairs += 1
            meta = {"chosen_line": record.line, "rejected_line": partner.line}
            yield pair_record(prompt_of(record), chosen_answer, rejected_answer, meta)

    write_records(pairs(), output, to)
    report.unmatched_rejected = [Leftover(rejected, r.line, question_of(r), "no match")
                                 for queue in waiting.values() for r in queue]
    report.unmatched_rejected.sort(key=lambda item: item.line or 0)
    if report.pairs == 0:
        output.unlink(missing_ok=True)
        raise DataError("no pairs: no question has a different answer in both files", location=Location(chosen),
                        hint="the two files must answer the same questions (styled vs plain)")
    return report
