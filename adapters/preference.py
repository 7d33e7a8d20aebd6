"""Preference rows: a prompt with a chosen and a rejected answer (DPO, ORPO, SimPO), or one answer
labelled desirable or not (KTO), as `Record`s, and the formats each backend reads them in.

In memory a pair is an ordinary `Record` whose last assistant message is the chosen answer, with
the rejected answer in `meta["rejected_response"]`; a labelled answer carries `meta["label"]`
(True: desirable). Those are ms-swift's own column names, so the `messages` writer already writes
ms-swift's files; the other formats read and write the same records:

- `pairs`: stylewrap's own rows `{"question", "chosen", "rejected", "system"?, "history"?}` (what
  `datagen` and `data pairs` write; LLaMA-Factory reads them as alpaca ranking rows). TRL's
  conversational shape `{"chosen": [messages], "rejected": [messages]}` is read too.
- `ranking`: LLaMA-Factory's sharegpt ranking rows: `conversations` up to the last question,
  `chosen` and `rejected` one `{"from": "gpt", "value"}` turn each.
- `messages_pairs`: ms-swift's `messages` + `rejected_response`.
- `messages_kto`: `messages` + a boolean `label` (ms-swift's KTO rows; LLaMA-Factory reads the same
  file with `kto_tag: label`).

Every reader refuses an empty side, a rejected answer equal to the chosen one, and (TRL shape) two
sides that do not answer the same conversation, as a `RowProblem` naming the field.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from stylewrap.adapters.formats import (
    SHAREGPT_TAGS,
    Format,
    read_messages,
    read_sharegpt,
    register_format,
    write_messages,
    write_sharegpt,
)
from stylewrap.adapters.records import ASSISTANT, SYSTEM, USER, Record, RowProblem, check_messages

REJECTED = "rejected_response"   # meta key of a pair's rejected answer
LABEL = "label"                  # meta key of a KTO row's desirable (True) / undesirable (False)

PAIR_KEYS = frozenset(("question", "chosen", "rejected", "system", "history"))
RANKING_KEYS = frozenset(("conversations", "chosen", "rejected", "system", "tools"))


def same_text(a: str, b: str) -> bool:
    """Equal once whitespace is ignored: a pair teaches nothing when both sides read the same."""
    return "".join(a.split()) == "".join(b.split())


def check_pair(chosen: Any, rejected: Any, chosen_field: str, rejected_field: str) -> None:
    for value, where in ((chosen, chosen_field), (rejected, rejected_field)):
        if value is None:
            raise RowProblem(where, "missing")
        if not isinstance(value, str):
            raise RowProblem(where, f"must be a string, got {type(value).__name__}")
        if not value.strip():
            raise RowProblem(where, "empty answer")
    if same_text(chosen, rejected):
        raise RowProblem(rejected_field, "the same answer as chosen: the pair prefers nothing")


def pair_record(prompt: list[dict], chosen: str, rejected: str, meta: dict | None = None) -> Record:
    """A pair as a Record: `prompt` (system?, turns, last question) + the chosen answer."""
    return Record([*prompt, {"role": ASSISTANT, "content": chosen}], meta={**(meta or {}), REJECTED: rejected})


def prompt_of(record: Record) -> list[dict]:
    return record.messages[:-1]


def question_of(record: Record) -> str:
    return next(m["content"] for m in reversed(record.messages) if m["role"] == USER)


def is_pair(record: Record) -> bool:
    return REJECTED in record.meta


# ---- pairs: {"question", "chosen", "rejected", "system"?, "history"?} -------------------------


def _read_trl(row: dict) -> Record:
    """TRL's conversational rows: two whole conversations that differ only in the last answer."""
    sides = []
    for side in ("chosen", "rejected"):
        fake = {"messages": row[side]}
        try:
            record = read_messages(fake)
        except RowProblem as exc:
            raise RowProblem(f"{side}{(exc.field or '')[len('messages'):]}", exc.message) from None
        sides.append(record)
    chosen, rejected = sides
    if prompt_of(chosen) != prompt_of(rejected):
        index = next((i for i, (a, b) in enumerate(zip(chosen.messages, rejected.messages)) if a != b),
                     min(len(chosen.messages), len(rejected.messages)) - 1)
        raise RowProblem(f"rejected[{index}].content", "the question differs from chosen's: both sides must answer the same conversation")
    check_pair(chosen.messages[-1]["content"], rejected.messages[-1]["content"],
               f"chosen[{len(chosen.messages) - 1}].content", f"rejected[{len(rejected.messages) - 1}].content")
    meta = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
    return pair_record(prompt_of(chosen), chosen.messages[-1]["content"], rejected.messages[-1]["content"], meta)


def read_pairs(row: dict) -> Record:
    if isinstance(row.get("chosen"), list):
        return _read_trl(row)
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RowProblem("question", "missing" if question is None else "empty question" if isinstance(question, str)
                         else f"must be a string, got {type(question).__name__}")
    check_pair(row.get("chosen"), row.get("rejected"), "chosen", "rejected")
    prompt: list[dict] = []
    paths: list[str] = []
    system = row.get("system")
    if system not in (None, ""):
        prompt.append({"role": SYSTEM, "content": system})
        paths.append("system")
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowProblem("history", f"must be a list of [question, answer] pairs, got {type(history).__name__}")
    for index, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise RowProblem(f"history[{index}]", "must be a [question, answer] pair")
        prompt += [{"role": USER, "content": turn[0]}, {"role": ASSISTANT, "content": turn[1]}]
        paths += [f"history[{index}][0]", f"history[{index}][1]"]
    prompt.append({"role": USER, "content": question})
    paths.append("question")
    check_messages([*prompt, {"role": ASSISTANT, "content": row["chosen"]}], [*paths, "chosen"].__getitem__, "question")
    return pair_record(prompt, row["chosen"], row["rejected"], {k: v for k, v in row.items() if k not in PAIR_KEYS})


def _require_pair(record: Record, fmt: str) -> None:
    if not is_pair(record):
        raise RowProblem(REJECTED, f"{fmt} rows are chosen/rejected pairs; this record has no rejected answer")
    if record.messages[-1]["role"] != ASSISTANT:
        raise RowProblem("chosen", "a pair ends with the chosen assistant answer")


def write_pairs(record: Record) -> dict:
    _require_pair(record, "pairs")
    messages = record.messages
    system = messages[0]["content"] if messages[0]["role"] == SYSTEM else None
    turns = messages[1:] if system is not None else messages
    if any(m["role"] not in (USER, ASSISTANT) for m in turns):
        raise RowProblem("messages", "pairs rows hold questions and answers only; write ranking or messages_pairs instead")
    row: dict[str, Any] = {"question": turns[-2]["content"], "chosen": turns[-1]["content"],
                           "rejected": record.meta[REJECTED]}
    if system is not None:
        row["system"] = system
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    if history:
        row["history"] = history
    row.update({k: v for k, v in record.meta.items() if k != REJECTED})
    return row


def _is_pairs(row: dict) -> bool:
    return "chosen" in row and "rejected" in row and "conversations" not in row and "messages" not in row


# ---- ranking: LLaMA-Factory's sharegpt rows with chosen/rejected turns ------------------------


def _turn_text(row: dict, side: str) -> Any:
    turn = row.get(side)
    if not isinstance(turn, dict):
        raise RowProblem(side, "missing" if turn is None else f"must be one {{from, value}} turn, got {type(turn).__name__}")
    if turn.get("from") != SHAREGPT_TAGS["assistant_tag"]:
        raise RowProblem(f"{side}.from", f"must be {SHAREGPT_TAGS['assistant_tag']!r}, got {turn.get('from')!r}")
    return turn.get("value")


def read_ranking(row: dict) -> Record:
    chosen, rejected = _turn_text(row, "chosen"), _turn_text(row, "rejected")
    check_pair(chosen, rejected, "chosen.value", "rejected.value")
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise RowProblem("conversations", "missing" if turns is None else f"must be a list of turns, got {type(turns).__name__}")
    if turns and isinstance(turns[-1], dict) and turns[-1].get("from") != SHAREGPT_TAGS["user_tag"]:
        raise RowProblem(f"conversations[{len(turns) - 1}].from", "the conversation must end with the question (human)")
    whole = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
    record = read_sharegpt({**whole, "conversations": [*turns, {"from": SHAREGPT_TAGS["assistant_tag"], "value": chosen}]})
    record.meta[REJECTED] = rejected
    return record


def write_ranking(record: Record) -> dict:
    _require_pair(record, "ranking")
    rejected = record.meta[REJECTED]
    row = write_sharegpt(Record(record.messages[:-1], record.tools, {k: v for k, v in record.meta.items() if k != REJECTED}))
    conversations = row.pop("conversations")
    gpt = SHAREGPT_TAGS["assistant_tag"]
    return {"conversations": conversations, "chosen": {"from": gpt, "value": record.messages[-1]["content"]},
            "rejected": {"from": gpt, "value": rejected}, **row}


def _is_ranking(row: dict) -> bool:
    return isinstance(row.get("conversations"), list) and isinstance(row.get("chosen"), dict)


# ---- messages_pairs (ms-swift DPO/ORPO/SimPO) and messages_kto (ms-swift and LLaMA-Factory KTO) ---


def read_messages_pairs(row: dict) -> Record:
    record = read_messages(row)
    check_pair(record.messages[-1]["content"], record.meta.get(REJECTED), f"messages[{len(record.messages) - 1}].content",
               REJECTED)
    return record


def write_messages_pairs(record: Record) -> dict:
    _require_pair(record, "messages_pairs")
    return write_messages(record)


def read_messages_kto(row: dict) -> Record:
    record = read_messages(row)
    if not isinstance(record.meta.get(LABEL), bool):
        raise RowProblem(LABEL, f"must be true (desirable) or false (undesirable), got {record.meta.get(LABEL)!r}")
    return record


def write_messages_kto(record: Record) -> dict:
    if not isinstance(record.meta.get(LABEL), bool):
        raise RowProblem(LABEL, "a KTO row needs label true/false; derive them from pairs with unpaired()")
    return write_messages(record)


def unpaired(pairs: Iterable[Record]) -> Iterator[Record]:
    """KTO's unpaired rows from pairs: the chosen answer desirable, the rejected one not."""
    for pair in pairs:
        meta = {k: v for k, v in pair.meta.items() if k != REJECTED}
        yield Record(list(pair.messages), pair.tools, {**meta, LABEL: True}, pair.line)
        yield Record([*prompt_of(pair), {"role": ASSISTANT, "content": pair.meta[REJECTED]}], pair.tools,
                     {**meta, LABEL: False}, pair.line)


register_format(Format("pairs", "preference pairs {question, chosen, rejected, system?, history?} (or TRL's chosen/rejected "
                       "conversations)", read_pairs, write_pairs, _is_pairs), before="qa")
register_format(Format("ranking", "LLaMA-Factory sharegpt ranking rows: conversations + chosen/rejected turns", read_ranking,
                       write_ranking, _is_ranking), before="messages")
register_format(Format("messages_pairs", "ms-swift preference rows: messages + rejected_response", read_messages_pairs,
                       write_messages_pairs, lambda row: isinstance(row.get("messages"), list) and REJECTED in row),
                before="messages")
register_format(Format("messages_kto", "KTO rows: messages + label (true: desirable)", read_messages_kto, write_messages_kto,
                       lambda row: isinstance(row.get("messages"), list) and isinstance(row.get(LABEL), bool)),
                before="messages")
