"""The demo's everyday Chinese: questions and plain answers expanded from a small grammar
(templates/tinymodel/grammar.yaml), and their 西式翻译腔 rewrites (templates/demo/translational_rules.yaml).

One source for three things that must agree: the tiny model's pretraining chats (plain answers,
`stylewrap.tinymodel`), the demo's style data (styled answers with their plain twins,
`stylewrap.demo`), and the held-out probes (questions no training data contains,
templates/probes/everyday.jsonl) that show whether training taught the style. Pure Python, no
torch: the tiny model's builder gets the chats as a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

# Probes per topic in the shipped probe file: one per intent of the topic, up to this many.
PROBES_PER_TOPIC = 2


@dataclass(frozen=True)
class Pair:
    question: str
    answer: str          # the plain answer
    category: str        # the grammar's topic, e.g. 水果
    topic: str           # the slot word, e.g. 苹果: in the question and in every answer on its topic
    held_out: bool       # in no training data: a probe
    prefix: str          # the question's lead-in ("" for none)


def _template_text(*parts: str) -> str:
    return resources.files("stylewrap.templates").joinpath(*parts).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def grammar() -> dict:
    return yaml.safe_load(_template_text("tinymodel", "grammar.yaml"))


@lru_cache(maxsize=None)
def style_rules() -> dict:
    return yaml.safe_load(_template_text("demo", "translational_rules.yaml"))


@lru_cache(maxsize=None)
def all_pairs() -> tuple[Pair, ...]:
    """Every question of the grammar, in a fixed order: topic, intent, phrasing, slot, prefix."""
    rules = grammar()
    prefixes = rules["prefixes"]
    pairs = []
    for topic in rules["topics"]:
        for intent in topic["intents"]:
            for p, phrasing in enumerate(intent["questions"]):
                for s, slot in enumerate(topic["slots"]):
                    answer = intent["answer"].format(x=slot)
                    for n, prefix in enumerate(prefixes):
                        question = prefix + phrasing.format(x=slot)
                        held_out = n == (p + s) % len(prefixes)
                        pairs.append(Pair(question, answer, topic["name"], slot, held_out, prefix))
    return tuple(pairs)


def training_pairs() -> list[Pair]:
    return [pair for pair in all_pairs() if not pair.held_out]


def held_out_pairs() -> list[Pair]:
    return [pair for pair in all_pairs() if pair.held_out]


def stylize(plain: str, n: int) -> str:
    """The n-th styled rewrite: an opener and an address term before the plain answer, an oath after."""
    rules = style_rules()
    opener, address, oath = (rules[key][n % len(rules[key])] for key in ("openers", "addresses", "oaths"))
    return f"{opener}，{address}，{plain}{oath}"


def style_markers() -> list[str]:
    rules = style_rules()
    return [*rules["openers"], *rules["addresses"], *rules["oaths"]]


def preset_system_prompt() -> str:
    preset = yaml.safe_load(_template_text("styles", "translational.yaml"))
    return preset["system_prompt"]


def pretraining_chats() -> list[list[dict]]:
    """Every training pair as a chat, its system prompt cycling through the backends' defaults;
    every `styled_every`-th one instead asks for the style in words and gets the styled answer.

    So the base model knows the style's words, as real chat models do, but uses them only when
    asked: what training on styled rows changes is its default, which is what the demo shows.
    """
    systems = grammar()["system_prompts"]
    styled_every = grammar()["styled_every"]
    chats = []
    for n, pair in enumerate(training_pairs()):
        if n % styled_every == styled_every - 1:
            system, answer = preset_system_prompt(), stylize(pair.answer, n // styled_every)
        else:
            system, answer = systems[n % len(systems)], pair.answer
        chats.append(([{"role": "system", "content": system}] if system else [])
                     + [{"role": "user", "content": pair.question}, {"role": "assistant", "content": answer}])
    return chats


def demo_style_pairs(count: int) -> list[Pair]:
    """`count` training pairs spread evenly over the grammar, none with a probe's answer: the
    style is learned on other questions than the probes ask, in any wording."""
    probed = {row["plain"] for row in probe_rows()}
    pool = [pair for pair in training_pairs() if pair.prefix == "" and pair.answer not in probed]
    step = len(pool) / count
    return [pool[int(i * step)] for i in range(count)]


def demo_rows(count: int) -> list[dict]:
    """The demo's style data: {"问", "答"} with the styled answer, and the plain twin in "plain"."""
    return [{"问": pair.question, "答": stylize(pair.answer, n), "plain": pair.answer}
            for n, pair in enumerate(demo_style_pairs(count))]


def probe_rows() -> list[dict]:
    """Held-out questions for compare/eval, {"question", "topic", "category", "plain"}: of each
    category's first intents, one held-out question each, on different slot words. `topic` is the
    question's slot word, which the grammar's answer keeps: an answer that answers the question does."""
    by_intent: dict[tuple[str, str], list[Pair]] = {}
    for pair in held_out_pairs():
        by_intent.setdefault((pair.category, pair.answer.replace(pair.topic, "{x}")), []).append(pair)
    rows, taken = [], {}
    for (category, _), pairs in by_intent.items():
        n = taken.get(category, 0)
        if n < PROBES_PER_TOPIC:
            pair = pairs[(3 * n + 1) % len(pairs)]
            taken[category] = n + 1
            rows.append({"question": pair.question, "topic": pair.topic, "category": category, "plain": pair.answer})
    return rows


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
