"""The stages, each a function from items to records: topics, dialogues (plain answers, one or
several turns) and stylize (answers rewritten in the style, questions untouched).

Every request asks for one JSON object; every reply is parsed leniently and then checked, and a
reply that fails a check is asked again up to `max_attempts` times before the item goes to the
errors file with the reason and the raw reply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from stylewrap.datagen.client import ChatClient, Completion
from stylewrap.datagen.engine import ItemFailed, ItemUsage, WorkItem
from stylewrap.datagen.parsing import ReplyParseError, normalize_text, parse_reply
from stylewrap.datagen.styles import Style

AVOID_WINDOW = 20  # accepted questions of the same topic shown to the teacher as "not these"


def short_hash(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


def checked_reply(completion: Completion, usage: ItemUsage) -> dict:
    usage.add(completion)
    if completion.finish_reason == "length":
        raise ItemFailed("truncated: finish_reason=length (raise --max-tokens)", completion.text)
    try:
        return parse_reply(completion.text)
    except ReplyParseError as exc:
        raise ItemFailed(f"unparseable reply: {exc}", completion.text) from None


def reply_turns(reply: dict, raw: str) -> list[dict]:
    """The {user, assistant} turns of a reply: {"dialogue": [...]} as asked, or the shapes models
    drift to: one bare turn, or a bare list of turns."""
    turns = reply.get("dialogue")
    if turns is None and _list_comes_first(raw):
        try:
            turns = parse_reply(raw, list)
        except ReplyParseError:
            pass
    if turns is None and {"user", "assistant"} <= set(reply):
        turns = [reply]
    if not isinstance(turns, list) or not turns:
        raise ItemFailed("reply has no 'dialogue' list", raw)
    out = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("user"), str) or not isinstance(turn.get("assistant"), str):
            raise ItemFailed("a dialogue turn is not {user, assistant} strings", raw)
        out.append({"user": turn["user"].strip(), "assistant": turn["assistant"].strip()})
    return out


def request_seed(base: int | None, item_id: str, attempt: int) -> int | None:
    """A different seed per item and attempt: one seed for all would make a deterministic
    teacher repeat itself exactly where we ask again for something new."""
    if base is None:
        return None
    return (base + int(short_hash(item_id, attempt), 16)) % 2**31


def _list_comes_first(raw: str) -> bool:
    brackets = [i for i in (raw.find("["), raw.find("［")) if i >= 0]
    braces = [i for i in (raw.find("{"), raw.find("｛")) if i >= 0]
    return bool(brackets) and (not braces or min(brackets) < min(braces))


async def retrying(item_attempts: int, attempt_once) -> dict:
    """Run `attempt_once(n)` until it returns; the last ItemFailed goes to the errors file."""
    last: ItemFailed | None = None
    for number in range(item_attempts):
        try:
            return await attempt_once(number)
        except ItemFailed as exc:
            last = exc
    raise last


# ---------------------------------------------------------------------- dialogues


def dialogue_items(topics: list[str], count: int, turns: int) -> list[WorkItem]:
    """`count` slots spread evenly over the topics (the first `count % len(topics)` get one more)."""
    items = []
    for index, topic in enumerate(topics):
        quota = count // len(topics) + (1 if index < count % len(topics) else 0)
        for slot in range(quota):
            items.append(WorkItem(f"dlg-{short_hash(topic, turns)[:8]}-{slot:05d}", {"topic": topic, "slot": slot, "turns": turns}))
    return items


@dataclass
class DialogueStage:
    """Plain dialogues whose first questions are all distinct (after normalization)."""

    client: ChatClient
    style: Style
    max_attempts: int
    dedup_attempts: int = 8
    seed: int | None = None
    seen: dict[str, str] = field(default_factory=dict)          # normalized first question -> item id
    recent: dict[str, list[str]] = field(default_factory=dict)  # topic -> accepted first questions
    duplicates: int = 0

    def remember(self, record: dict) -> None:
        question = record["messages"][0]["content"]
        self.seen[normalize_text(question)] = record["id"]
        self.recent.setdefault(record["topic"], []).append(question)

    async def __call__(self, item: WorkItem, usage: ItemUsage) -> dict:
        topic, turns = item.payload["topic"], item.payload["turns"]

        async def attempt(number: int) -> dict:
            avoid = self.recent.get(topic, [])[-AVOID_WINDOW:]
            prompt = self.style.render("dialogues", topic=topic, turns=turns, avoid=avoid)
            completion = await self.client.complete(
                [{"role": "user", "content": prompt}], stage="dialogues", seed=request_seed(self.seed, item.id, number)
            )
            reply = checked_reply(completion, usage)
            dialogue = reply_turns(reply, completion.text)
            if len(dialogue) < turns:
                raise ItemFailed(f"asked for {turns} turns, got {len(dialogue)}", completion.text)
            dialogue = dialogue[:turns]
            if any(not t["user"] or not t["assistant"] for t in dialogue):
                raise ItemFailed("empty question or answer", completion.text)
            key = normalize_text(dialogue[0]["user"])
            if key in self.seen:
                self.duplicates += 1
                raise DuplicateQuestion(f"duplicate question (same as {self.seen[key]})", completion.text)
            messages = [m for t in dialogue for m in ({"role": "user", "content": t["user"]}, {"role": "assistant", "content": t["assistant"]})]
            record = {"id": item.id, "topic": topic, "messages": messages}
            self.remember(record)
            return {"topic": topic, "messages": messages}

        # a repeat is a good reply to a crowded topic, not a bad one: it has its own allowance
        rejected = repeated = 0
        while True:
            try:
                return await attempt(rejected + repeated)
            except DuplicateQuestion:
                repeated += 1
                if repeated >= self.dedup_attempts:
                    raise
            except ItemFailed:
                rejected += 1
                if rejected >= self.max_attempts:
                    raise


class DuplicateQuestion(ItemFailed):
    """The first question repeats an accepted one (after normalization)."""


# ---------------------------------------------------------------------- stylize


def as_turns(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """(system prompt, [{user, assistant}]) of a strictly alternating conversation."""
    system = None
    body = list(messages)
    if body and body[0]["role"] == "system":
        system = body.pop(0)["content"]
    if not body or len(body) % 2 or any(m["role"] != ("user" if i % 2 == 0 else "assistant") for i, m in enumerate(body)):
        raise ItemFailed("not an alternating user/assistant conversation")
    if not all(isinstance(m["content"], str) for m in body):
        raise ItemFailed("not plain text (typed content parts)")
    return system, [{"user": body[i]["content"], "assistant": body[i + 1]["content"]} for i in range(0, len(body), 2)]


def stylize_item(order: int, source_id: str, messages: list[dict], meta: dict) -> WorkItem:
    """Identical conversations share one id, so a repeated input row is rewritten once."""
    return WorkItem(f"sty-{short_hash(messages)}", {"order": order, "source_id": source_id, "messages": messages, "meta": meta})


def few_shot(style: Style) -> list[dict]:
    shots = []
    for example in style.examples:
        shots.append({"role": "user", "content": json.dumps({"dialogue": [{"user": example.user, "assistant": example.plain}]}, ensure_ascii=False)})
        shots.append({"role": "assistant", "content": json.dumps({"dialogue": [{"user": example.user, "assistant": example.styled}]}, ensure_ascii=False)})
    return shots


@dataclass
class StylizeStage:
    """Rewrite every assistant turn in the style; the questions must come back unchanged."""

    client: ChatClient
    style: Style
    max_attempts: int
    seed: int | None = None

    def __post_init__(self) -> None:
        self.prefix = [{"role": "system", "content": self.style.render("stylize_system")}, *few_shot(self.style)]

    async def __call__(self, item: WorkItem, usage: ItemUsage) -> dict:
        system, original = as_turns(item.payload["messages"])
        request = self.prefix + [{"role": "user", "content": json.dumps({"dialogue": original}, ensure_ascii=False)}]

        async def attempt(number: int) -> dict:
            completion = await self.client.complete(request, stage="stylize", seed=request_seed(self.seed, item.id, number))
            raw = completion.text
            rewritten = reply_turns(checked_reply(completion, usage), raw)
            if len(rewritten) != len(original):
                raise ItemFailed(f"expected {len(original)} turns, got {len(rewritten)}", raw)
            for number, (before, after) in enumerate(zip(original, rewritten), 1):
                if normalize_text(after["user"]) != normalize_text(before["user"]):
                    raise ItemFailed(f"turn {number}: question changed", raw)
                if not after["assistant"]:
                    raise ItemFailed(f"turn {number}: empty answer", raw)
                if normalize_text(after["assistant"]) == normalize_text(before["assistant"]):
                    raise ItemFailed(f"turn {number}: answer unchanged", raw)
            messages = [{"role": "system", "content": system}] if system else []
            for before, after in zip(original, rewritten):
                messages += [{"role": "user", "content": before["user"]}, {"role": "assistant", "content": after["assistant"]}]
            # the plain conversation stays beside its rewrite: together they are datagen's preference pairs
            return {"order": item.payload["order"], "source_id": item.payload["source_id"], "messages": messages,
                    "plain": item.payload["messages"], "meta": item.payload["meta"]}

        return await retrying(self.max_attempts, attempt)


# ---------------------------------------------------------------------- topics


async def topic_round(
    client: ChatClient, style: Style, wanted: int, have: list[str], usage: ItemUsage, seed: int | None
) -> list[str]:
    """New distinct topics from one request."""
    prompt = style.render("topics", count=wanted, avoid=have)
    completion = await client.complete([{"role": "user", "content": prompt}], stage="topics", seed=seed)
    reply = checked_reply(completion, usage)
    topics = reply.get("topics")
    if not isinstance(topics, list):
        raise ItemFailed("reply has no 'topics' list", completion.text)
    known = {normalize_text(t) for t in have}
    fresh = []
    for topic in topics:
        if isinstance(topic, str) and topic.strip() and normalize_text(topic) not in known:
            known.add(normalize_text(topic))
            fresh.append(topic.strip())
    return fresh
