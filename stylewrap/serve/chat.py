"""A terminal chat with any OpenAI-compatible endpoint: streamed replies, multi-turn history.

Commands typed at the prompt: `/reset` forgets the conversation, `/system TEXT` sets (or, without
TEXT, clears) the system prompt and starts over, `/exit` leaves. Ctrl-C while a reply streams stops
that reply (the unanswered turn is dropped from history); Ctrl-C at the prompt clears the line,
Ctrl-D leaves. A model's output reaches the terminal without control characters or escape
sequences (a random or broken model emits form feeds and ESC sequences that scramble the screen).
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterator

from stylewrap.errors import InputError, RunFailed

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
HELP = "commands: /reset  /system [TEXT]  /exit"


@dataclass
class Conversation:
    system: str | None = None
    turns: list[dict] = field(default_factory=list)

    def messages(self, user_text: str | None = None) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        tail = [{"role": "user", "content": user_text}] if user_text is not None else []
        return head + self.turns + tail

    def add_exchange(self, user_text: str, reply: str) -> None:
        self.turns += [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]

    def reset(self, system: str | None = None) -> None:
        self.turns.clear()
        self.system = system


@dataclass
class Endpoint:
    base_url: str
    model: str
    api_key: str
    served: list[str] = field(default_factory=list)   # a stylewrap server's models, the tuned one first
    roles: dict[str, str] = field(default_factory=dict)   # model -> "tuned" | "base", where known


def resolve_endpoint(base_url: str | None, model: str | None, api_key_env: str | None, *, choose=None) -> Endpoint:
    """Fill what was not given from the stylewrap server there (or the one running: see
    `known_server`; `choose(records)` picks among several), then defaults."""
    from stylewrap.serve.deploy import known_server

    record = known_server(base_url, model, choose)
    base_url = base_url or (record.base_url if record else DEFAULT_BASE_URL)
    # A key goes only where it was meant to: the variable named with --api-key-env, or the one the
    # stylewrap server recorded there requires. Never $OPENAI_API_KEY to whatever listens on a port.
    key_env = api_key_env or (record.api_key_env if record else None)
    if api_key_env and not os.environ.get(api_key_env):
        raise InputError(f"--api-key-env {api_key_env}: that environment variable is empty or unset")
    api_key = (os.environ.get(key_env) if key_env else None) or "EMPTY"
    if model is None:
        model = record.models[0] if record else _first_model(base_url, api_key)
    return Endpoint(base_url.rstrip("/"), model, api_key, list(record.models) if record else [],
                    record.model_roles() if record else {})


def _first_model(base_url: str, api_key: str) -> str:
    models = list_models(base_url, api_key)
    if not models:
        raise InputError(f"{base_url} serves no model", hint="pass --model")
    return models[0]


@contextlib.contextmanager
def _api_errors(base_url: str) -> Iterator[None]:
    """The endpoint's failures as one-line RunFailed errors."""
    import openai

    try:
        yield
    except openai.APIConnectionError:
        raise RunFailed(f"cannot reach {base_url}", hint="is the server running? `stylewrap deploy status`") from None
    except openai.APIStatusError as exc:
        raise RunFailed(f"{base_url}: HTTP {exc.status_code}: {exc.message}") from None


def list_models(base_url: str, api_key: str) -> list[str]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with _api_errors(base_url):
        return [m.id for m in client.models.list()]


def stream_reply(endpoint: Endpoint, messages: list[dict], **options) -> Iterator[str]:
    """Yield the reply's text pieces as they arrive."""
    import openai

    client = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=1)
    with _api_errors(endpoint.base_url):
        stream = client.chat.completions.create(model=endpoint.model, messages=messages, stream=True, **options)
    with stream, _api_errors(endpoint.base_url):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


# ESC sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \\), and two-character ones
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -Z\\-~])")
_UNFINISHED_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?)?\Z")
_BIDI_OVERRIDES = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class TerminalText:
    """Streamed model text made safe to print: escape sequences and control characters removed,
    newlines and tabs kept. An escape sequence split across two pieces is held back until whole."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        unfinished = _UNFINISHED_ESCAPE.search(text)
        cut = unfinished.start() if unfinished and len(text) - unfinished.start() < 256 else len(text)
        text, self._held = text[:cut], text[cut:]
        return _clean(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return _clean(text)


def _clean(text: str) -> str:
    text = _ESCAPE.sub("", text).replace("\r\n", "\n")
    return "".join(char for char in text if char in "\n\t" or not (
        unicodedata.category(char) == "Cc" or char in _BIDI_OVERRIDES))


def line_editing(stream) -> bool:
    """Arrow keys, history and Ctrl-A/E at the prompt: Python's `readline` (GNU readline or
    libedit) hooks into `input()` once imported, on a terminal only (piped input stays plain)."""
    if not stream.isatty():
        return False
    try:
        import readline  # noqa: F401 - importing it is what turns line editing on
    except ImportError:   # Python built without it (e.g. Windows): input() still works
        return False
    return True


def chat_loop(
    endpoint: Endpoint,
    conversation: Conversation,
    *,
    read: Callable[[str], str],
    write: Callable[[str], None],
    **options,
) -> Conversation:
    """The REPL. `read(prompt)` returns a line; EOFError (Ctrl-D) ends the chat, KeyboardInterrupt
    (Ctrl-C) drops the line being typed."""
    # two short lines: one long line wrapped mid-word in an 80-column terminal
    write(f"chatting with {endpoint.model} at {endpoint.base_url}\n{HELP}; Ctrl-C stops a reply, Ctrl-D leaves\n")
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            write("\n")
            return conversation
        except KeyboardInterrupt:
            write("^C\n")   # as a shell does: the line is dropped, the chat goes on (Ctrl-D leaves)
            continue
        if not line:
            continue
        if line == "/exit":
            return conversation
        if line == "/reset":
            conversation.reset(conversation.system)
            write("(conversation cleared)\n")
            continue
        if line == "/system" or line.startswith("/system "):
            conversation.reset(line[len("/system"):].strip() or None)
            write(f"(system prompt {'set' if conversation.system else 'cleared'}; conversation cleared)\n")
            continue
        if line.startswith("/"):
            write(f"(unknown command; {HELP})\n")
            continue
        write(f"{endpoint.model}> ")
        pieces: list[str] = []
        shown = TerminalText()
        try:
            for piece in stream_reply(endpoint, conversation.messages(line), **options):
                pieces.append(piece)
                write(shown.feed(piece))
            write(shown.flush())
        except KeyboardInterrupt:
            write("\n(reply interrupted; that turn is not kept)\n")
            continue
        except RunFailed as exc:
            write(f"\n(error: {exc.one_line()}; that turn is not kept)\n")
            continue
        write("\n")
        conversation.add_exchange(line, "".join(pieces))
