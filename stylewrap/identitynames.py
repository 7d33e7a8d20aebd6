"""One name for the model across the config: `style.identity.name` (the self-cognition rows),
`style.persona` (what eval's identity probes look for) and the name a system prompt gives the model.

A system prompt writes `{{name}}`/`{{author}}` to use the identity's; a prompt that introduces the
model by another name ("你是小明", "You are Qwen, created by ...") contradicts the rows trained
beside it, and the model learns both (the 古文 tutorial's model started calling itself 小明).
"""

from __future__ import annotations

import re

PLACEHOLDERS = {"name": ("{{name}}", "{{NAME}}"), "author": ("{{author}}", "{{AUTHOR}}")}

# "你是X" / "你叫X" / "你的名字是X" / "我是X": X ends at punctuation or the end within 12 characters
_CHINESE = re.compile(r"(?:你|您|我)(?:的名字|名字)?(?:叫做|名叫|叫|是)\s*[「“\"']?"
                      r"([\u4e00-\u9fffA-Za-z0-9_\-]{1,12}?)[」”\"']?(?=[，,。.！!？?；;、\s]|$)")
# "You are Qwen", "your name is Ada", "I am Claude": a capitalised word, so "you are a ..." is no name
_ENGLISH = re.compile(r"\b(?:[Yy]ou are|[Yy]ou're|[Yy]our name is|[Yy]ou are called|[Yy]ou are named|I am|I'm|"
                      r"[Mm]y name is)\s+([A-Z][\w\-]*)")
# what follows "你是"/"You are" and is a description, not a name
_NOT_A_NAME = re.compile(r"^(?:一|个|某|位|I\b|An?\b|The\b)|助手|模型|人工智能|机器人|AI|assistant|model", re.I)


def fill(text: str, name: str, author: str) -> str:
    values = {"name": name, "author": author}
    for key, spellings in PLACEHOLDERS.items():
        for placeholder in spellings:
            text = text.replace(placeholder, values[key])
    return text


def has_placeholder(text: str) -> bool:
    return any(p in text for spellings in PLACEHOLDERS.values() for p in spellings)


def names_given(text: str) -> list[str]:
    """The names `text` introduces the model (or its speaker) by."""
    found = [m.group(1) for pattern in (_CHINESE, _ENGLISH) for m in pattern.finditer(text)]
    return [name for name in dict.fromkeys(found) if not _NOT_A_NAME.search(name)]


def contradictions(name: str | None, persona: str | None, system_prompt: str | None) -> list[tuple[str, str]]:
    """(field, message) for each place that names the model other than `style.identity.name`."""
    problems = []
    if name is None:
        if system_prompt and has_placeholder(system_prompt):
            problems.append(("system_prompt", "{{name}}/{{author}} in the system prompt need style.identity"))
        return problems
    if persona is not None and persona != name:
        problems.append(("persona", f"persona {persona!r} contradicts style.identity.name {name!r}"))
    for other in names_given(system_prompt or ""):
        if other != name and name not in other:
            problems.append(("system_prompt",
                             f"the system prompt calls the model {other!r} but style.identity.name is {name!r}"))
            break
    return problems
