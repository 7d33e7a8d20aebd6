"""The dataset formats: one row reader and one row writer each, in a registry.

A reader turns one parsed JSON row into a `Record` (raising `RowProblem` with the field in the
format's own terms); a writer turns a `Record` back into a row. Columns a format does not know
travel in `Record.meta` and are written back as columns. Third parties add a format with
`register_format(Format(...))`, the same way the built-ins are registered below.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from stylewrap.adapters.records import (
    ASSISTANT,
    FUNCTION_CALL,
    OBSERVATION,
    SYSTEM,
    TOOL,
    USER,
    Record,
    RowProblem,
    check_messages,
)

RowReader = Callable[..., Record]
RowWriter = Callable[..., dict]


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    read_row: RowReader  # (row: dict, **options) -> Record
    write_row: RowWriter  # (record: Record, **options) -> dict
    # how to recognise a row of this format; the first format whose `detect` says yes wins
    detect: Callable[[dict], bool]


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format, *, replace: bool = False, before: str | None = None) -> Format:
    """Add `fmt`; `before` puts it ahead of that format in detection order (its rows are a special
    case of the other's: preference rows are also sharegpt or messages rows)."""
    if fmt.name in FORMATS and not replace:
        raise ValueError(f"format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    if before is not None and before in FORMATS:
        for name in [*FORMATS][[*FORMATS].index(before):]:
            if name != fmt.name:
                FORMATS[name] = FORMATS.pop(name)
    return fmt


def _meta(row: dict, known: frozenset[str]) -> dict:
    if row.keys() <= known:
        return {}
    return {key: value for key, value in row.items() if key not in known}


def _require_str(row: dict, key: str, *, optional: bool = False) -> str:
    value = row.get(key)
    if value is None:
        if optional:
            return ""
        raise RowProblem(key, "missing")
    if not isinstance(value, str):
        raise RowProblem(key, f"must be a string, got {type(value).__name__}")
    return value


def _tools_of(row: dict, key: str = "tools") -> str | None:
    tools = row.get(key)
    if tools is None or tools == "":
        return None
    if isinstance(tools, (list, dict)):
        return json.dumps(tools, ensure_ascii=False)
    if not isinstance(tools, str):
        raise RowProblem(key, f"must be a JSON string or list, got {type(tools).__name__}")
    # both backends json.loads the string when they build the prompt: a row that is not JSON fails there
    try:
        parsed = json.loads(tools)
    except ValueError as exc:
        raise RowProblem(key, f"a tools string must hold a JSON list of tools: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(parsed, (list, dict)):
        raise RowProblem(key, f"a tools string must hold a JSON list of tools, got {type(parsed).__name__}")
    return tools


def _with_meta(row: dict, record: Record) -> dict:
    for key, value in record.meta.items():
        row.setdefault(key, value)
    return row


def _unsupported(record: Record, fmt: str, allowed: frozenset[str]) -> None:
    for index, message in enumerate(record.messages):
        if message["role"] not in allowed:
            raise RowProblem(f"messages[{index}].role", f"{fmt} cannot hold a {message['role']!r} message; convert to sharegpt or messages instead")


# ---- alpaca: instruction / input / output / system / history ---------------------------------

ALPACA_KEYS = frozenset(("instruction", "input", "output", "system", "history", "tools"))


def read_alpaca(row: dict) -> Record:
    messages: list[dict] = []
    paths: list[str] = []
    system = _require_str(row, "system", optional=True)
    if system:
        messages.append({"role": SYSTEM, "content": system})
        paths.append("system")
    history = row.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise RowProblem("history", f"must be a list of [question, answer] pairs, got {type(history).__name__}")
        for index, pair in enumerate(history):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise RowProblem(f"history[{index}]", "must be a [question, answer] pair")
            messages.append({"role": USER, "content": pair[0]})
            messages.append({"role": ASSISTANT, "content": pair[1]})
            paths += [f"history[{index}][0]", f"history[{index}][1]"]
    if "instruction" not in row and "input" not in row:
        raise RowProblem("instruction", "missing (alpaca rows need instruction and/or input)")
    # LLaMA-Factory's own join: the prompt is "instruction\ninput" with empty parts left out
    instruction, query = _require_str(row, "instruction", optional=True), _require_str(row, "input", optional=True)
    prompt = "\n".join(part for part in (instruction, query) if part)
    messages.append({"role": USER, "content": prompt})
    paths.append("instruction" if row.get("instruction") else "input")
    messages.append({"role": ASSISTANT, "content": row.get("output")})
    paths.append("output")
    if "output" not in row:
        raise RowProblem("output", "missing")
    check_messages(messages, paths.__getitem__, "instruction")
    return Record(messages, _tools_of(row), _meta(row, ALPACA_KEYS),
                  prompt_parts=(instruction or "", query) if query else None)


def write_alpaca(record: Record) -> dict:
    _unsupported(record, "alpaca", frozenset((SYSTEM, USER, ASSISTANT)))
    messages = record.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == SYSTEM else ""
    turns = messages[1:] if system else messages
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    prompt = turns[-2]["content"]
    parts = record.prompt_parts
    instruction, query = parts if parts and "\n".join(p for p in parts if p) == prompt else (prompt, "")
    row: dict[str, Any] = {"instruction": instruction, "input": query, "output": turns[-1]["content"]}
    if system:
        row["system"] = system
    if history:
        row["history"] = history
    if record.tools:
        row["tools"] = record.tools
    return _with_meta(row, record)


def _is_alpaca(row: dict) -> bool:
    return "output" in row and ("instruction" in row or "input" in row)


# ---- sharegpt and SWIFT conversations: a list of {from, value} -------------------------------

SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
SWIFT_TAGS = {**SHAREGPT_TAGS, "user_tag": "user", "assistant_tag": "assistant"}
_TAG_ROLES = {
    "user_tag": USER,
    "assistant_tag": ASSISTANT,
    "observation_tag": OBSERVATION,
    "function_tag": FUNCTION_CALL,
    "system_tag": SYSTEM,
}
CONVERSATION_KEYS = frozenset(("conversations", "system", "tools"))


class _TurnTags(NamedTuple):
    """One set of sharegpt tags, resolved once: the two keys of a turn and both role maps."""

    role_tag: str
    content_tag: str
    role_of: dict[str, str]  # tag -> role
    tag_of: dict[str, str]  # role -> tag


@functools.lru_cache(maxsize=16)
def _resolve_tags(tags: tuple[tuple[str, str], ...]) -> _TurnTags:
    named = dict(tags)
    tag_of = {role: named[tag] for tag, role in _TAG_ROLES.items()}
    tag_of[TOOL] = named["observation_tag"]
    return _TurnTags(named["role_tag"], named["content_tag"], {named[tag]: role for tag, role in _TAG_ROLES.items()}, tag_of)


def _turn_tags(defaults: dict[str, str], overrides: dict[str, str]) -> _TurnTags:
    return _resolve_tags(tuple({**defaults, **overrides}.items()))


_SHAREGPT_TURN_TAGS = _turn_tags(SHAREGPT_TAGS, {})
_SWIFT_TURN_TAGS = _turn_tags(SWIFT_TAGS, {})


def _read_turns(row: dict, column: str, tags: _TurnTags, *, json_string_ok: bool) -> Record:
    turns = row.get(column)
    if turns is None:
        raise RowProblem(column, "missing")
    if isinstance(turns, str) and json_string_ok:
        # ModelScope datasets store the conversation column as a JSON string
        try:
            turns = json.loads(turns)
        except ValueError as exc:
            raise RowProblem(column, f"holds a string that is not JSON: {exc}") from None
    if not isinstance(turns, list):
        raise RowProblem(column, f"must be a list of turns, got {type(turns).__name__}")
    role_tag, content_tag, role_of, _ = tags
    messages: list[dict] = []
    system = row.get("system")
    if system is not None and system != "":
        if not isinstance(system, str):
            raise RowProblem("system", f"must be a string, got {type(system).__name__}")
        messages.append({"role": SYSTEM, "content": system})
    offset = len(messages)
    for index, turn in enumerate(turns):
        try:
            message = {"role": role_of[turn[role_tag]], "content": turn[content_tag]}
        except (KeyError, TypeError):
            raise _turn_problem(turn, f"{column}[{index}]", role_tag, content_tag, role_of) from None
        if "loss_weight" in turn:
            message["loss_weight"] = turn["loss_weight"]
        messages.append(message)

    def path_of(index: int) -> str:
        return "system" if index < offset else f"{column}[{index - offset}].{content_tag}"

    check_messages(messages, path_of, column)
    return Record(messages, _tools_of(row), _meta(row, CONVERSATION_KEYS))


def _turn_problem(turn: Any, where: str, role_tag: str, content_tag: str, role_of: dict[str, str]) -> RowProblem:
    if not isinstance(turn, dict):
        return RowProblem(where, f"must be an object with {role_tag!r} and {content_tag!r}, got {type(turn).__name__}")
    for key in (role_tag, content_tag):
        if key not in turn:
            return RowProblem(f"{where}.{key}", "missing")
    return RowProblem(f"{where}.{role_tag}", f"unknown role {turn[role_tag]!r} (known: {', '.join(sorted(role_of))})")


def _write_turns(record: Record, tags: _TurnTags, *, system_as_turn: bool) -> dict:
    role_tag, content_tag, _, tag_of = tags
    row: dict[str, Any] = {}
    turns = []
    for message in record.messages:
        if message["role"] == SYSTEM and not system_as_turn:
            row["system"] = message["content"]
            continue
        turn = {role_tag: tag_of[message["role"]], content_tag: message["content"]}
        if "loss_weight" in message:
            turn["loss_weight"] = message["loss_weight"]
        turns.append(turn)
    row = {"conversations": turns, **row}
    if record.tools:
        row["tools"] = record.tools
    return _with_meta(row, record)


def read_sharegpt(row: dict, **tags: str) -> Record:
    return _read_turns(row, "conversations", _turn_tags(SHAREGPT_TAGS, tags) if tags else _SHAREGPT_TURN_TAGS, json_string_ok=False)


def write_sharegpt(record: Record, **tags: str) -> dict:
    return _write_turns(record, _turn_tags(SHAREGPT_TAGS, tags) if tags else _SHAREGPT_TURN_TAGS, system_as_turn=False)


def read_swift(row: dict) -> Record:
    return _read_turns(row, "conversations", _SWIFT_TURN_TAGS, json_string_ok=True)


def write_swift(record: Record) -> dict:
    return _write_turns(record, _SWIFT_TURN_TAGS, system_as_turn=True)


def _conversation_tags(row: dict) -> set:
    turns = row.get("conversations")
    if isinstance(turns, str):
        return {"<json string>"}
    if not isinstance(turns, list):
        return set()
    return {turn.get("from") for turn in turns if isinstance(turn, dict)}


def _is_swift(row: dict) -> bool:
    tags = _conversation_tags(row)
    return "<json string>" in tags or bool(tags & {"user", "assistant"}) and not tags & {"human", "gpt"}


def _is_sharegpt(row: dict) -> bool:
    return isinstance(row.get("conversations"), list)


# ---- OpenAI messages: role/content (string or typed parts), loss_weight ----------------------

MESSAGES_KEYS = frozenset(("messages", "tools"))
_OPENAI_ROLES = {SYSTEM: SYSTEM, USER: USER, ASSISTANT: ASSISTANT, TOOL: OBSERVATION, OBSERVATION: OBSERVATION, FUNCTION_CALL: FUNCTION_CALL}


def _text_of(content: Any, where: str) -> Any:
    if not isinstance(content, list):
        return content
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RowProblem(f"{where}[{index}]", f"only text content parts are supported, got {kind!r}")
        # OpenAI names the text "text"; LLaMA-Factory's v1 data names it "value"
        text = part.get("text", part.get("value"))
        if not isinstance(text, str):
            raise RowProblem(f"{where}[{index}].text", "missing or not a string")
        texts.append(text)
    return "".join(texts)


def read_messages(row: dict) -> Record:
    items = row.get("messages")
    if items is None:
        raise RowProblem("messages", "missing")
    if not isinstance(items, list):
        raise RowProblem("messages", f"must be a list, got {type(items).__name__}")
    messages: list[dict] = []
    for index, item in enumerate(items):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise RowProblem(where, f"must be an object, got {type(item).__name__}")
        role = _OPENAI_ROLES.get(item.get("role")) if isinstance(item.get("role"), str) else None
        if role is None:
            raise RowProblem(f"{where}.role", f"unknown role {item.get('role')!r} (known: {', '.join(sorted(_OPENAI_ROLES))})")
        tool_calls = item.get("tool_calls")
        if role == ASSISTANT and tool_calls:
            calls = [call.get("function", call) if isinstance(call, dict) else call for call in tool_calls]
            message = {"role": FUNCTION_CALL, "content": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)}
        else:
            if "content" not in item:
                raise RowProblem(f"{where}.content", "missing")
            message = {"role": role, "content": _text_of(item["content"], f"{where}.content")}
        if "loss_weight" in item:
            message["loss_weight"] = item["loss_weight"]
        messages.append(message)
    check_messages(messages, "messages[{}].content".format, "messages")
    return Record(messages, _tools_of(row), _meta(row, MESSAGES_KEYS))


def function_calls(content: str) -> list[dict]:
    """A function_call message's JSON as OpenAI tool_calls."""
    try:
        calls = json.loads(content)
    except ValueError:
        raise RowProblem("function_call", f"a function_call message is not JSON: {content[:60]!r}") from None
    calls = calls if isinstance(calls, list) else [calls]
    return [{"type": "function", "function": call} for call in calls]


def write_messages(record: Record) -> dict:
    items = []
    for message in record.messages:
        role = message["role"]
        if role == FUNCTION_CALL:
            item: dict[str, Any] = {"role": ASSISTANT, "content": "", "tool_calls": function_calls(message["content"])}
        else:
            item = {"role": TOOL if role == OBSERVATION else role, "content": message["content"]}
        if "loss_weight" in message:
            item["loss_weight"] = message["loss_weight"]
        items.append(item)
    row: dict[str, Any] = {"messages": items}
    if record.tools:
        row["tools"] = record.tools
    return _with_meta(row, record)


def _is_messages(row: dict) -> bool:
    return isinstance(row.get("messages"), list)


# ---- the seed pipeline's {"问": question, "答": answer} rows ----------------------------------

QA_KEYS = frozenset(("问", "答"))


def read_qa(row: dict) -> Record:
    messages = [{"role": USER, "content": row.get("问")}, {"role": ASSISTANT, "content": row.get("答")}]
    for key in ("问", "答"):
        if key not in row:
            raise RowProblem(key, "missing")
    check_messages(messages, ("问", "答").__getitem__, "问")
    return Record(messages, None, _meta(row, QA_KEYS))


def write_qa(record: Record) -> dict:
    _unsupported(record, "qa", frozenset((USER, ASSISTANT)))
    if len(record.messages) != 2:
        raise RowProblem("messages", f"qa rows hold one question and one answer, this record has {len(record.messages)} messages")
    return _with_meta({"问": record.messages[0]["content"], "答": record.messages[1]["content"]}, record)


def _is_qa(row: dict) -> bool:
    return "问" in row and "答" in row


# Detection order matters: SWIFT rows are also a list of conversations. How each backend reads a
# format is that backend's table (`stylewrap.backends.<name>.registration.FORMATS`).
register_format(Format("qa", "the seed pipeline's {\"问\": ..., \"答\": ...} rows", read_qa, write_qa, _is_qa))
register_format(Format("messages", "OpenAI messages (role/content, typed text parts, loss_weight)", read_messages,
                       write_messages, _is_messages))
register_format(Format("swift", "SWIFT conversations (from: user|assistant; a JSON string column too)", read_swift,
                       write_swift, _is_swift))
register_format(Format("sharegpt", "sharegpt conversations of from/value (human/gpt, function_call, observation), system, tools",
                       read_sharegpt, write_sharegpt, _is_sharegpt))
register_format(Format("alpaca", "alpaca instruction/input/output (+ system, history)", read_alpaca, write_alpaca, _is_alpaca))
