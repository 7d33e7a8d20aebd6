"""Many JSONL lines proved valid in one C call: a block of lines decoded by msgspec as one array.

`typedrows` proves one line at a time: a Python call, a try and a dozen checks per row, about half
of a whole-file pass. Here a block of whole lines (about 64 KiB) is rewritten into one JSON document
and decoded by one msgspec call, and every check `typedrows.sharegpt_prover` makes on a row is made
on the whole block at once with C-level passes (map, chain, slices, counts) instead of per-row Python.
A block that fails any check is not judged here: the caller proves its lines one by one, so a
problem keeps its exact line, field and wording, and a valid row its Record.

One value per line. The block `a\\nb\\nc` becomes `[[a\\n],[b\\n],[c]]` (each line's newline kept) and
is decoded as `list[tuple[ShareGPTRow]]`, a list of one-element arrays. A line's newline is outside
any string (a JSON string cannot hold a raw newline), so each inserted `],[` is outside strings
too, and its `]` can close only the one-element array: it cannot close `conversations` (a row
object wants `,"key"` or `}` next, not `,[`) or the outer list (nothing may follow it). So every
inserted `],[` is a boundary between two one-element arrays. A line may hold a `],[` of its own
(two rows written `{..}],[{..}`), so the arrays are also counted: as many arrays as lines means no
other boundary, so each array holds exactly the text of its line, and that text is exactly one row.
A line holding two rows, half a row, a lone `,` or `]`, or nothing at all fails one or the other.
"""

from __future__ import annotations

from functools import partial
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Callable

import msgspec
from msgspec import UNSET

from stylewrap.adapters.typedrows import ShareGPTRow, _FunctionCall, _Gpt, _Human, _Observation, role_verdict, tools_valid

_decode_lines = msgspec.json.Decoder(list[tuple[ShareGPTRow]]).decode
_only = itemgetter(0)
_last = itemgetter(-1)
_conversations = attrgetter("conversations")
_value = attrgetter("value")
_system = attrgetter("system")
_tools = attrgetter("tools")
_kinds_of = partial(map, type)  # a row's turns -> their Struct types
_PROMPTS = frozenset((_Human, _Observation))
_MODELS = frozenset((_Gpt, _FunctionCall))


def block_of(lines: bytes) -> tuple[bytes, int]:
    """The JSON array of one-element arrays for whole `lines` (the last may lack its newline), and how many lines."""
    arrays = lines.replace(b"\n", b"\n],[")
    count = (len(arrays) - len(lines)) // 3
    if lines.endswith(b"\n"):  # the last `],[` opens no array: cut to `]`, then close the list
        return b"".join((b"[[", memoryview(arrays)[:-2], b"]")), count
    return b"".join((b"[[", arrays, b"]]")), count + 1


def sharegpt_block_prover() -> Callable[[bytes], list[ShareGPTRow] | None]:
    """prove(lines) -> the rows of whole `lines` when every one is a valid sharegpt row, else None.

    The same checks as `typedrows.sharegpt_prover`, summed over the block. No repeated key: each
    line's colons are at least the keys msgspec kept from it (each kept key owns a structural ':'),
    so the block's colons equal to the block's kept keys means equal on every line. Where strings
    hold colons, the decoded strings' colons are added to the kept keys, as the one-line proof does
    (and, as there, not when a colon may be written `\\u003a`). Role order: when every row is whole
    (prompt, model) pairs ending with an assistant reply, the flattened turns alternate and no
    system turn appears, which is `check_messages`' verdict for any such row; other blocks get the
    verdict per distinct sequence of roles, as one line does.
    """
    verdicts: tuple[dict[tuple, bool], dict[tuple, bool]] = ({}, {})
    tools_seen: set[str] = set()
    decode_error = msgspec.DecodeError

    def prove(lines: bytes) -> list[ShareGPTRow] | None:
        """`lines`: whole lines as the file holds them, newlines included (the file's last may lack one)."""
        block, count = block_of(lines)
        try:
            arrays = _decode_lines(block)
        except decode_error:
            return None
        if len(arrays) != count:  # a line held a `],[` of its own
            return None
        rows = list(map(_only, arrays))
        convs = list(map(_conversations, rows))
        turns = list(chain.from_iterable(convs))
        values = list(map(_value, turns))
        if any(map(str.isspace, values)):
            return None
        systems = list(map(_system, rows))
        tools = list(map(_tools, rows))
        # each row keeps its conversations, two keys per turn, and its system and tools when present
        kept = 3 * len(rows) + 2 * len(turns) - systems.count(UNSET) - tools.count(UNSET)
        colons = len(lines) - len(lines.replace(b":", b""))  # memchr-fast; bytes.count walks byte by byte
        if colons != kept:
            if b"\\u003" in lines:
                return None
            # UNSET is falsy, like "": neither holds a colon
            inside = "".join(values).count(":") + "".join(filter(None, systems)).count(":") + "".join(filter(None, tools)).count(":")
            if colons != kept + inside:
                return None
        if any(map(str.isspace, filter(None, systems))):
            return None
        if not _roles_ok_in_block(convs, turns, systems):
            return None
        if not all(tools_valid(tools_seen, text) for text in set(filter(None, tools)) - tools_seen):
            return None
        return rows

    def _roles_ok_in_block(convs: list, turns: list, systems: list) -> bool:
        if [] not in convs:
            # the block's turns alternate prompt/model from the first, and every row ends with an
            # assistant reply: a row of odd length would end on an even place, a prompt, so every
            # row is whole (prompt, model) pairs and each row alternates on its own
            kinds = list(map(type, turns))
            if (_PROMPTS.issuperset(kinds[0::2]) and _MODELS.issuperset(kinds[1::2])
                    and {_Gpt}.issuperset(map(type, map(_last, convs)))):
                return True
        return all(role_verdict(verdicts, has_system, roles)
                   for has_system, roles in set(zip(map(bool, systems), map(tuple, map(_kinds_of, convs)))))

    return prove


# formats whose lines can be proved a block at a time; the others go line by line (`typedrows`)
BLOCK_PROVERS: dict[str, Callable[[], Callable[[bytes], list | None]]] = {"sharegpt": sharegpt_block_prover}


def block_prover_for(fmt: str, options: dict) -> Callable[[bytes], list | None] | None:
    """A block prover when `fmt` has one and its reader runs with the default options (no custom tags)."""
    return BLOCK_PROVERS[fmt]() if fmt in BLOCK_PROVERS and not options else None
