"""Rows proved valid in one C pass: msgspec decodes a JSONL line straight into typed Structs.

The precise path (jsonstream's parse, then the format's reader into a `Record`) builds every row as
Python dicts and checks it in Python. Most rows of a real file are plain, so a line is first decoded
by msgspec into the format's Structs: the shape, every type, the known role tags (a tagged union)
and non-empty contents are checked in C while the row is built. What is left in Python is a few
operations per row and per turn: no repeated key (see `sharegpt_prover`), no whitespace-only content,
and the role order, whose verdict `check_messages` gives once per distinct sequence of roles.

A line that is not proved valid this way (a problem, or anything unusual: an extra column, a
loss_weight, a null, a `\\u003a` escape, a custom role tag) is not judged here: it goes to the
precise path, which gives the same Record or the exact file:line:field problem as before. So this
module can only make a valid row faster, never change what a row means or what an error says.
`TYPED_FORMATS` is the table of formats that have Structs; the others always take the precise path.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, NamedTuple, Union

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType

from stylewrap.adapters.formats import function_calls
from stylewrap.adapters.jsonstream import dump_row
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

# "" is refused in C; a whitespace-only string is refused by `_has_blank`
NonEmpty = Annotated[str, Meta(min_length=1)]
# distinct role sequences whose verdict is remembered (a real file has a few dozen)
MAX_VERDICTS = 4096


class _Turn(Struct, tag_field="from", forbid_unknown_fields=True, frozen=True, gc=False):
    value: NonEmpty


# One Struct per role tag, so msgspec checks the tag and the type says the role. The roles live in a
# table, not in a class attribute: a class attribute on a Struct subclass makes every field read
# on its instances about 20x slower (measured: 220 ns against 9 ns for `turn.value`).
class _Human(_Turn, tag="human"):
    pass


class _Gpt(_Turn, tag="gpt"):
    pass


class _Observation(_Turn, tag="observation"):
    pass


class _FunctionCall(_Turn, tag="function_call"):
    pass


class _System(_Turn, tag="system"):
    pass


ROLE_OF_TURN = {_Human: USER, _Gpt: ASSISTANT, _Observation: OBSERVATION, _FunctionCall: FUNCTION_CALL, _System: SYSTEM}


class ShareGPTRow(Struct, forbid_unknown_fields=True, gc=False):
    """A sharegpt row with the default tags, no extra column and no loss_weight."""

    conversations: list[Union[_Human, _Gpt, _Observation, _FunctionCall, _System]]
    system: str | UnsetType = UNSET
    tools: str | UnsetType = UNSET


# both backends json.loads a tools string: it must hold a list (or one tool); its elements are only
# checked to be JSON (msgspec validates what it skips), not built
_check_tools = msgspec.json.Decoder(Union[list[msgspec.Raw], dict[str, msgspec.Raw]]).decode


def _roles_ok(has_system: bool, turn_types: tuple) -> bool:
    """`check_messages`' verdict on the roles alone."""
    messages = [{"role": SYSTEM, "content": "x"}] if has_system else []
    messages += [{"role": ROLE_OF_TURN[kind], "content": "x"} for kind in turn_types]
    try:
        check_messages(messages, str, "")
    except RowProblem:
        return False
    return True


def role_verdict(verdicts: tuple[dict[tuple, bool], dict[tuple, bool]], has_system: bool, roles: tuple) -> bool:
    """`_roles_ok`, remembered per (system prompt or not, sequence of turn types) in `verdicts`."""
    known = verdicts[has_system]
    verdict = known.get(roles)
    if verdict is None:
        verdict = _roles_ok(has_system, roles)
        if len(known) < MAX_VERDICTS:
            known[roles] = verdict
    return verdict


def tools_valid(tools_seen: set[str], text: str) -> bool:
    """A tools string holds a JSON list or object; strings seen valid are remembered in `tools_seen`."""
    if text in tools_seen:
        return True
    try:
        _check_tools(text)
    except msgspec.DecodeError:
        return False
    if len(tools_seen) < MAX_VERDICTS:
        tools_seen.add(text)
    return True


def sharegpt_prover() -> Callable[[bytes], ShareGPTRow | None]:
    """prove(line) -> the row when the JSONL line is a valid sharegpt row, else None.

    No repeated key: every key of a JSON object owns exactly one structural ':', and every other ':'
    of the line is inside a string, where it decodes to a ':' unless written `\\u003a`. So with no
    such escape, the line's colons minus the decoded strings' colons is the number of keys written,
    and it must equal the keys msgspec kept (msgspec, like json and orjson, keeps the last of
    repeated keys silently): the row's key, its system and tools when present, and two per turn
    (the tag and the value: nothing else is allowed). Most lines have no ':' inside a string, so
    kept == the line's colons proves it and the strings are not walked at all.
    """
    decode = msgspec.json.Decoder(ShareGPTRow).decode
    # role-order verdicts for rows without and with a system prompt, and tools strings seen valid
    # (a real file repeats a few tool lists: checking one again costs its hash, not a parse)
    verdicts: tuple[dict[tuple, bool], dict[tuple, bool]] = ({}, {})
    tools_seen: set[str] = set()
    decode_error = msgspec.DecodeError

    def prove(raw: bytes) -> ShareGPTRow | None:
        try:
            row = decode(raw)
        except decode_error:
            return None
        turns = row.conversations
        system, tools = row.system, row.tools
        kept = 1 + 2 * len(turns)
        if system is not UNSET:
            kept += 1
            if system.isspace():
                return None
        if tools is not UNSET:
            kept += 1
        colons = raw.count(b":")
        if kept != colons:
            if b"\\u003" in raw:
                return None
            texts = [turn.value for turn in turns]
            texts += [text for text in (system, tools) if text is not UNSET]
            if kept != colons - sum([text.count(":") for text in texts]):
                return None
        roles = ()
        for turn in turns:
            if turn.value.isspace():
                return None
            roles += (type(turn),)
        if not role_verdict(verdicts, system is not UNSET and system != "", roles):
            return None
        if tools is not UNSET and tools != "" and not tools_valid(tools_seen, tools):
            return None
        return row

    return prove


def sharegpt_record(row: ShareGPTRow) -> Record:
    """The Record `read_sharegpt` builds from the same row."""
    messages = [{"role": ROLE_OF_TURN[type(turn)], "content": turn.value} for turn in row.conversations]
    system = row.system
    if system is not UNSET and system != "":
        messages.insert(0, {"role": SYSTEM, "content": system})
    tools = row.tools
    return Record(messages, None if tools is UNSET or tools == "" else tools, {})


_MESSAGES_ROLE = {_Human: USER, _Gpt: ASSISTANT, _Observation: TOOL, _System: SYSTEM}


def sharegpt_to_messages(row: ShareGPTRow) -> bytes:
    """`dump_row(write_messages(sharegpt_record(row)))`, without the Record in between.

    A row without a function_call holds strings only, where orjson writes exactly what the
    stdlib would, so it skips `dump_row`'s check for values orjson writes differently.
    """
    items = []
    system = row.system
    if system is not UNSET and system != "":
        items.append({"role": SYSTEM, "content": system})
    strings_only = True
    for turn in row.conversations:
        kind = type(turn)
        if kind is _FunctionCall:
            items.append({"role": ASSISTANT, "content": "", "tool_calls": function_calls(turn.value)})
            strings_only = False
        else:
            items.append({"role": _MESSAGES_ROLE[kind], "content": turn.value})
    out: dict[str, Any] = {"messages": items}
    tools = row.tools
    if tools is not UNSET and tools != "":
        out["tools"] = tools
    return orjson.dumps(out) if strings_only else dump_row(out)


# (input format, output format) -> the encoded output row straight from a proved row; other pairs
# go through the Record and the output format's writer
DIRECT_WRITERS: dict[tuple[str, str], Callable[[Any], bytes]] = {("sharegpt", "messages"): sharegpt_to_messages}


class TypedFormat(NamedTuple):
    """One format's fast path: a prover factory and the Record a proved row stands for."""

    prover: Callable[[], Callable[[bytes], Any]]
    record: Callable[[Any], Record]


TYPED_FORMATS = {"sharegpt": TypedFormat(sharegpt_prover, sharegpt_record)}


def prover_for(fmt: str, options: dict) -> Callable[[bytes], Any] | None:
    """A prover when `fmt` has Structs and its reader runs with the default options (no custom tags)."""
    return TYPED_FORMATS[fmt].prover() if fmt in TYPED_FORMATS and not options else None
