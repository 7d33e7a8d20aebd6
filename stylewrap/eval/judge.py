"""The pairwise judge (`--judge-model`): the reference answer against a variant's, asked twice with
the positions swapped; a side wins an axis only when both orders name it, anything else is a tie.

Requests go through datagen's `ChatClient` (same endpoint settings, retries with backoff on
429/5xx, `Retry-After` honoured). A verdict that is not the JSON the rubric asks for is asked
again (`ATTEMPTS` in all), then counted missing: never a crash. Each call's verdict is cached on
disk by a hash of (question, both answers in their order, judge model, rubric version, style
card), so a rerun costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
import yaml

from stylewrap.datagen.client import ChatClient, ClientSettings, RequestFailed
from stylewrap.datagen.parsing import ReplyParseError, parse_reply
from stylewrap.datagen.styles import Style
from stylewrap.fsutil import atomic_write_json

RUBRIC_FILE = "judge-v1.yaml"
AXES = ("style", "content", "fluency", "overall")
CHOICES = {"a": "A", "b": "B", "tie": "tie"}
ATTEMPTS = 3
SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def default_cache_dir() -> Path:
    return Path(os.environ.get("STYLEWRAP_CACHE_DIR", "~/.cache/stylewrap")).expanduser() / "judge"


@functools.lru_cache(maxsize=4)
def load_rubric(name: str = RUBRIC_FILE) -> dict:
    return yaml.safe_load((resources.files("stylewrap.templates") / "eval" / name).read_text(encoding="utf-8"))


def _render(source: str, **values) -> str:
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source).render(**values).strip()


def style_card(preset: Style) -> dict:
    return {"title": preset.title, "style_guide": preset.style_guide, "markers": preset.markers,
            "examples": [e.model_dump() for e in preset.examples]}


def parse_verdict(text: str) -> dict[str, str]:
    """{axis: "A" | "B" | "tie"}; ValueError when the reply is not that."""
    try:
        reply = parse_reply(text)
    except ReplyParseError as exc:
        raise ValueError(str(exc)) from None
    verdict = {}
    for axis in AXES:
        value = CHOICES.get(str(reply.get(axis, "")).strip().lower())
        if value is None:
            raise ValueError(f"{axis}: {reply.get(axis)!r} is not A, B or tie")
        verdict[axis] = value
    return verdict


def combine(reference_first: dict[str, str], variant_first: dict[str, str]) -> dict[str, str]:
    """{axis: win | loss | tie} for the variant: a win or loss needs both orders to agree."""
    outcome = {}
    for axis in AXES:
        first = {"A": "loss", "B": "win"}.get(reference_first[axis], "tie")    # A was the reference
        second = {"A": "win", "B": "loss"}.get(variant_first[axis], "tie")     # A was the variant
        outcome[axis] = first if first == second else "tie"
    return outcome


@dataclass
class JudgeStats:
    calls: int = 0
    cached: int = 0
    malformed: int = 0
    missing: int = 0
    position_flips: int = 0    # overall verdicts that followed the position instead of the answer
    failures: list[str] = field(default_factory=list)


@dataclass
class Judge:
    settings: ClientSettings
    preset: Style
    cache_dir: Path
    rubric: dict = field(default_factory=load_rubric)
    stats: JudgeStats = field(default_factory=JudgeStats)

    def _messages(self, question: str, answer_a: str, answer_b: str) -> list[dict]:
        card = style_card(self.preset)
        return [{"role": "system", "content": _render(self.rubric["system"], **card)},
                {"role": "user", "content": _render(self.rubric["user"], question=question, answer_a=answer_a,
                                                    answer_b=answer_b)}]

    def _key(self, question: str, answer_a: str, answer_b: str) -> str:
        payload = [question, answer_a, answer_b, self.settings.model, self.rubric["version"], style_card(self.preset)]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()

    async def _verdict(self, client: ChatClient, gate: asyncio.Semaphore, question: str, answer_a: str,
                       answer_b: str) -> dict[str, str] | None:
        path = self.cache_dir / f"{self._key(question, answer_a, answer_b)}.json"
        if path.is_file():
            self.stats.cached += 1
            return json.loads(path.read_text(encoding="utf-8"))["verdict"]
        messages = self._messages(question, answer_a, answer_b)
        for attempt in range(ATTEMPTS):
            async with gate:
                self.stats.calls += 1
                try:
                    completion = await client.complete(messages, json_object=True, stage="judge",
                                                       seed=attempt if attempt else None)
                except RequestFailed as exc:
                    self.stats.failures.append(exc.reason)
                    return None
            try:
                verdict = parse_verdict(completion.text)
            except ValueError as exc:
                self.stats.malformed += 1
                self.stats.failures.append(f"malformed verdict: {exc}")
                continue
            atomic_write_json(path, {"verdict": verdict, "model": self.settings.model,
                                     "rubric_version": self.rubric["version"]})
            return verdict
        return None

    async def _pair(self, client, gate, question: str, reference: str, answer: str) -> dict | None:
        first, second = await asyncio.gather(self._verdict(client, gate, question, reference, answer),
                                             self._verdict(client, gate, question, answer, reference))
        if first is None or second is None:
            self.stats.missing += 1
            return None
        if first["overall"] != "tie" and first["overall"] == second["overall"]:
            self.stats.position_flips += 1
        return {"outcome": combine(first, second), "reference_first": first, "variant_first": second}

    async def _run(self, items: list[tuple[str, str, str]], progress) -> list[dict | None]:
        gate = asyncio.Semaphore(self.settings.concurrency)
        async with ChatClient(self.settings) as client:
            async def one(item):
                result = await self._pair(client, gate, *item)
                if progress:
                    progress()
                return result
            return await asyncio.gather(*(one(item) for item in items))

    def judge(self, items: list[tuple[str, str, str]], progress=None) -> list[dict | None]:
        """One result a (question, reference answer, variant answer): None when missing."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(self._run(items, progress))
