"""The one in-memory shape every dataset format is read into and written from.

A `Record` is an OpenAI-style `messages` list plus the sharegpt `tools` string and free metadata.
`check_messages` holds the conversation rules every format shares (role order, alternation, empty
or non-string content), so a problem is found the same way whatever the file looked like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

SYSTEM, USER, ASSISTANT = "system", "user", "assistant"
FUNCTION_CALL, OBSERVATION, TOOL = "function_call", "observation", "tool"
ROLES = (SYSTEM, USER, ASSISTANT, TOOL, FUNCTION_CALL, OBSERVATION)

# After the optional system message turns alternate (LLaMA-Factory's rule, ms-swift agrees):
# the prompt side speaks on odd turns, the model side on even turns.
PROMPT_ROLES = frozenset((USER, OBSERVATION, TOOL))
MODEL_ROLES = frozenset((ASSISTANT, FUNCTION_CALL))


@dataclass(slots=True)
class Record:
    messages: list[dict]
    tools: str | None = None
    meta: dict = field(default_factory=dict)
    # 1-based line of the row in the file it came from; not part of the record's identity.
    line: int | None = field(default=None, compare=False, repr=False)
    # an alpaca row's (instruction, input) when it had an input: the last user message is their join,
    # and an alpaca writer splits it back where it can; other formats have one prompt only
    prompt_parts: tuple[str, str] | None = field(default=None, compare=False, repr=False)


class RowProblem(ValueError):
    """One row is malformed; `field` is a path in the file's own terms (e.g. conversations[2].value)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def check_messages(messages: list[dict], path_of: Callable[[int], str], empty_path: str) -> None:
    """Raise RowProblem for the first rule a conversation breaks.

    `path_of(i)` names message i in the source format (called only for an error, so readers pay
    nothing for it on good rows); `empty_path` names the column that should have held the conversation.
    """
    if not messages:
        raise RowProblem(empty_path, "no messages")
    start = 1 if messages[0]["role"] == SYSTEM else 0
    turn = 0
    for index, message in enumerate(messages):
        role = message["role"]
        content = message["content"]
        if not isinstance(content, str):
            raise RowProblem(path_of(index), f"content must be a string, got {type(content).__name__}")
        if not content.strip():
            raise RowProblem(path_of(index), f"empty {role} content")
        if index < start:
            continue
        if role == SYSTEM:
            raise RowProblem(path_of(index), "a system message may only come first")
        if role not in (MODEL_ROLES if turn & 1 else PROMPT_ROLES):
            wanted = "assistant/function_call" if turn & 1 else "user/observation"
            raise RowProblem(path_of(index), f"turn {turn + 1} is {role!r}, expected {wanted} (turns must alternate)")
        weight = message.get("loss_weight")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
            raise RowProblem(path_of(index), f"loss_weight must be a number, got {type(weight).__name__}")
        turn += 1
    if turn == 0:
        raise RowProblem(empty_path, "only a system message, no turns")
    if messages[-1]["role"] != ASSISTANT:
        raise RowProblem(path_of(len(messages) - 1), f"the conversation ends with {messages[-1]['role']!r}, not an assistant reply")
