"""What "the model learned the style" means, as numbers over answers to held-out probe questions.

An answer is styled when it holds one of the translational preset's markers
(templates/styles/translational.yaml), legible when it has no U+FFFD and at least 90% of its
characters are CJK or punctuation, on topic when it keeps the probe's own `topic` word (the
grammar's slot word the question is about, e.g. 葡萄 in 怎么挑葡萄？: an answer about another fruit
does not answer the question). At least ON_TOPIC_RATE of the answers must be on topic: the tiny
model copies the word in 22-23 of 24 base answers (it mixes up 小说/诗歌/散文), not in every one.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from importlib import resources

import yaml

LEGIBLE_SHARE = 0.9
TUNED_MARKER_RATE = 0.8
BASE_MARKER_RATE = 0.1
ON_TOPIC_RATE = 0.9


def preset_markers() -> list[str]:
    preset = resources.files("stylewrap.templates") / "styles" / "translational.yaml"
    return yaml.safe_load(preset.read_text(encoding="utf-8"))["markers"]


def everyday_probes() -> list[dict]:
    text = (resources.files("stylewrap.templates") / "probes" / "everyday.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _cjk_or_punctuation(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or unicodedata.category(char).startswith("P")


def legible(answer: str) -> bool:
    text = "".join(answer.split())
    return bool(text) and "\ufffd" not in text and sum(map(_cjk_or_punctuation, text)) >= LEGIBLE_SHARE * len(text)


@dataclass
class Verdict:
    marker_rate: float
    illegible: list[str]
    off_topic: list[tuple[str, str]]     # (topic word, answer)
    on_topic_rate: float

    def problems(self, *, styled: bool) -> list[str]:
        """Why these answers do not show what they should (styled: the tuned model; else the base)."""
        found = []
        if styled and self.marker_rate < TUNED_MARKER_RATE:
            found.append(f"marker rate {self.marker_rate:.2f} < {TUNED_MARKER_RATE}")
        if not styled and self.marker_rate > BASE_MARKER_RATE:
            found.append(f"marker rate {self.marker_rate:.2f} > {BASE_MARKER_RATE}")
        if self.illegible:
            found.append(f"{len(self.illegible)} illegible, e.g. {self.illegible[0]!r}")
        if self.on_topic_rate < ON_TOPIC_RATE:
            found.append(f"on-topic rate {self.on_topic_rate:.2f} < {ON_TOPIC_RATE}: {len(self.off_topic)} answers "
                         f"miss their question's word, e.g. {self.off_topic[0]}")
        return found


def judge(answers: list[str], probes: list[dict]) -> Verdict:
    assert len(answers) == len(probes), (len(answers), len(probes))
    markers = preset_markers()
    styled = sum(any(marker in answer for marker in markers) for answer in answers)
    off_topic = [(probe["topic"], answer) for probe, answer in zip(probes, answers) if probe["topic"] not in answer]
    return Verdict(
        marker_rate=styled / len(answers),
        illegible=[answer for answer in answers if not legible(answer)],
        off_topic=off_topic,
        on_topic_rate=1 - len(off_topic) / len(answers),
    )
