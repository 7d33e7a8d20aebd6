"""`stylewrap export RUN --to ollama`: an Ollama Modelfile whose TEMPLATE, SYSTEM and stop tokens
come from the run's own chat template, and, where llama.cpp's converter is here (`gguf.py`), a GGUF file.

The TEMPLATE is cut from the conversation the training backend itself rendered (`templatecheck`
finds each message's text in it; what lies between is the template), so it cannot drift from what
the model was trained on; `templatecheck` renders the written Modelfile back with `render_template`
(the subset of Go's text/template that Ollama chat templates use) and compares it token by token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from stylewrap.errors import InputError, Location

MODELFILE = "Modelfile"
OLLAMA_DIR = "ollama"


@dataclass(frozen=True)
class TemplatePieces:
    """What the chat template puts around each message (all text between the messages)."""

    system_prefix: str
    system_suffix: str
    user_prefix: str
    generation_prompt: str     # after a user message: the assistant turn's start
    assistant_suffix: str


def cut_pieces(text: str, contents: Sequence[str]) -> TemplatePieces:
    """`text`: system, user, assistant, user, assistant (`contents`) as the training template wrote them."""
    where, spans = 0, []
    for content in contents:
        start = text.find(content, where)
        if start < 0:
            raise InputError("the training template does not keep the messages verbatim; it has no Ollama equivalent",
                             location=Location(field="train.template"), hint=f"message {content!r} not found")
        spans.append((start, start + len(content)))
        where = start + len(content)
    between = [text[spans[i][1]:spans[i + 1][0]] for i in range(len(spans) - 1)]
    after_system, first_prompt, after_answer, second_prompt = between
    assistant_suffix = text[spans[-1][1]:]
    if first_prompt != second_prompt or not after_answer.startswith(assistant_suffix) \
            or not after_system.endswith(after_answer[len(assistant_suffix):]):
        raise InputError("the training template changes from turn to turn; it has no Ollama equivalent",
                         location=Location(field="train.template"))
    user_prefix = after_answer[len(assistant_suffix):]
    return TemplatePieces(system_prefix=text[:spans[0][0]], system_suffix=after_system[: len(after_system) - len(user_prefix)],
                          user_prefix=user_prefix, generation_prompt=first_prompt, assistant_suffix=assistant_suffix)


def go_template(pieces: TemplatePieces) -> str:
    for piece in (pieces.system_prefix, pieces.system_suffix, pieces.user_prefix, pieces.generation_prompt,
                  pieces.assistant_suffix):
        if '"""' in piece or "{{" in piece:
            raise InputError(f"template text {piece!r} cannot go into a Modelfile", location=Location(field="train.template"))
    return (f"{{{{ if .System }}}}{pieces.system_prefix}{{{{ .System }}}}{pieces.system_suffix}{{{{ end }}}}"
            f"{{{{ range .Messages }}}}{{{{ if eq .Role \"user\" }}}}{pieces.user_prefix}{{{{ .Content }}}}"
            f"{pieces.generation_prompt}{{{{ else if eq .Role \"assistant\" }}}}{{{{ .Content }}}}"
            f"{pieces.assistant_suffix}{{{{ end }}}}{{{{ end }}}}")


def modelfile_text(source: str, template: str, system: str | None, stops: Sequence[str]) -> str:
    lines = [f"FROM {source}", f'TEMPLATE """{template}"""']
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f"PARAMETER stop {_quoted(stop)}" for stop in dict.fromkeys(stops)]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_modelfile(text: str) -> dict[str, Any]:
    """TEMPLATE, SYSTEM and the stop parameters of a Modelfile (what `templatecheck` renders)."""
    found: dict[str, Any] = {"stops": []}
    for key in ("TEMPLATE", "SYSTEM"):
        match = re.search(rf'^{key} """(.*?)"""', text, re.S | re.M)
        found[key.lower()] = match.group(1) if match else None
    for match in re.finditer(r'^PARAMETER stop "((?:[^"\\]|\\.)*)"', text, re.M):
        found["stops"].append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return found


# ---------------------------------------------------------------- Go text/template, the subset Ollama chat templates use

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


def render_template(template: str, system: str | None, messages: Sequence[dict[str, str]]) -> str:
    """Render `template` as Ollama does for a chat request: .System, .Messages (.Role, .Content)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _ACTION.finditer(template):
        text = template[position:match.start()]
        if match.group(1):
            text = text.rstrip()
        if tokens and tokens[-1][0] == "trim":
            tokens.pop()
            text = text.lstrip()
        tokens.append(("text", text))
        tokens.append(("action", match.group(2)))
        if match.group(3):
            tokens.append(("trim", ""))
        position = match.end()
    tail = template[position:]
    if tokens and tokens[-1][0] == "trim":
        tokens.pop()
        tail = tail.lstrip()
    tokens.append(("text", tail))
    body, rest = _parse(tokens, 0, ("",))
    out: list[str] = []
    _run(body, {"System": system or "", "Messages": list(messages)}, out)
    return "".join(out)


def _parse(tokens, index, stops):
    """-> (nodes, index of the stopping action); nodes: ("text", s) | ("value", field) |
    ("if", [(condition, nodes)...], else nodes) | ("range", field, nodes)."""
    nodes: list = []
    while index < len(tokens):
        kind, value = tokens[index]
        if kind == "text":
            nodes.append(("text", value))
            index += 1
            continue
        word = value.split(" ", 1)[0]
        if word in ("end", "else") and stops != ("",):
            return nodes, index
        if word == "if":
            branches, otherwise = [], []
            condition = value[3:].strip()
            while True:
                inner, index = _parse(tokens, index + 1, ("end", "else"))
                branches.append((condition, inner))
                action = tokens[index][1]
                if action.startswith("else if "):
                    condition = action[len("else if "):].strip()
                    continue
                if action == "else":
                    otherwise, index = _parse(tokens, index + 1, ("end",))
                index += 1
                break
            nodes.append(("if", branches, otherwise))
        elif word == "range":
            inner, index = _parse(tokens, index + 1, ("end",))
            nodes.append(("range", value[len("range "):].strip(), inner))
            index += 1
        elif value.startswith("."):
            nodes.append(("value", value[1:]))
            index += 1
        else:
            raise InputError(f"Modelfile TEMPLATE action {{{{ {value} }}}} is outside what stylewrap can check")
    return nodes, index


def _test(condition: str, scope: dict) -> bool:
    match = re.fullmatch(r'eq \.(\w+) "(.*)"', condition)
    if match:
        return scope.get(match.group(1)) == match.group(2)
    if condition.startswith("."):
        return bool(scope.get(condition[1:]))
    raise InputError(f"Modelfile TEMPLATE condition {condition!r} is outside what stylewrap can check")


def _run(nodes, scope: dict, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "value":
            out.append(str(scope.get(node[1], "")))
        elif node[0] == "if":
            for condition, inner in node[1]:
                if _test(condition, scope):
                    _run(inner, scope, out)
                    break
            else:
                _run(node[2], scope, out)
        else:
            for item in scope.get(node[1].lstrip("."), []):
                _run(node[2], {**scope, "Role": item["role"], "Content": item["content"]}, out)


# ---------------------------------------------------------------- GGUF

GGUF_MISSING = ("no GGUF written: llama.cpp's converter is not on this machine yet; `stylewrap export RUN --to gguf` "
                "fetches it from PyPI (backends/gguf.py). The Modelfile imports the merged safetensors folder "
                "directly, which `ollama create` supports for Qwen2/Llama/Mistral/Gemma architectures.")
