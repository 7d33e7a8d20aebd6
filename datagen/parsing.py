"""Recover the JSON object a model meant to send, without `eval`.

Models wrap objects in prose and code fences, quote keys the Python way, use full-width
punctuation (｛“问”：“…”，“答”：“…”｝) and leave trailing commas. A small lenient parser accepts
all of that; the first object or array in the reply that parses is the answer.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any


class ReplyParseError(ValueError):
    """The reply holds no object we can read."""


OPENERS = {"{": "}", "[": "]", "｛": "}", "［": "]"}
CLOSERS = {"}": "}", "]": "]", "｝": "}", "］": "]"}
COLONS = {":", "："}
COMMAS = {",", "，", "、"}
# opening quote -> closing quote; full-width quotes nest, so they are counted
QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "＂": "＂"}
LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_BARE_KEY = re.compile(r"[^\s:：,，{}\[\]｛｝［］\"'“”‘’]+")


class _Parser:
    def __init__(self, text: str, start: int):
        self.text = text
        self.pos = start

    def fail(self, what: str) -> ReplyParseError:
        return ReplyParseError(f"{what} at offset {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and (self.text[self.pos].isspace() or self.text[self.pos] == "\ufeff"):
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self) -> Any:
        char = self.peek()
        if char in ("{", "｛"):
            return self.container(dict)
        if char in ("[", "［"):
            return self.container(list)
        if char in QUOTES:
            return self.string()
        for word, literal in LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return literal
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return float(match.group()) if match.group(1) or match.group(2) else int(match.group())
        raise self.fail("expected a value")

    def key(self) -> str:
        if self.peek() in QUOTES:
            return self.string()
        match = _BARE_KEY.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a key")
        self.pos = match.end()
        return match.group()

    def container(self, kind: type) -> Any:
        closer = OPENERS[self.text[self.pos]]
        self.pos += 1
        out: Any = kind()
        while True:
            char = self.peek()
            if char in CLOSERS:
                if CLOSERS[char] != closer:
                    raise self.fail("mismatched bracket")
                self.pos += 1
                return out
            if not char:
                raise self.fail("unterminated container")
            if kind is dict:
                name = self.key()
                if self.peek() not in COLONS:
                    raise self.fail("expected ':'")
                self.pos += 1
                out[name] = self.value()
            else:
                out.append(self.value())
            char = self.peek()
            if char in COMMAS:
                self.pos += 1  # a trailing comma before the closer is accepted by the loop
            elif char not in CLOSERS:
                raise self.fail("expected ',' or a closing bracket")

    def string(self) -> str:
        opener = self.text[self.pos]
        closer = QUOTES[opener]
        nests = opener != closer
        depth = 0
        self.pos += 1
        chunks: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and not nests:
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.text[self.pos + 2 : self.pos + 6]):
                    chunks.append(chr(int(self.text[self.pos + 2 : self.pos + 6], 16)))
                    self.pos += 6
                    continue
                chunks.append(ESCAPES.get(nxt, "\\" + nxt))
                self.pos += 2
                continue
            if nests and char == opener:
                depth += 1
            elif char == closer:
                if depth == 0:
                    self.pos += 1
                    return _join_surrogates("".join(chunks))
                depth -= 1
            chunks.append(char)
            self.pos += 1
        raise self.fail("unterminated string")


def _join_surrogates(text: str) -> str:
    # \ud83d\ude00 escapes arrive as two surrogate halves; round-trip them into one character
    if any("\ud800" <= c <= "\udfff" for c in text):
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def parse_reply(text: str, expect: type = dict) -> Any:
    """The first `expect` (dict or list) found in `text`; raises ReplyParseError."""
    if not text or not text.strip():
        raise ReplyParseError("empty reply")
    try:
        direct = json.loads(text)
        if isinstance(direct, expect):
            return direct
    except ValueError:
        pass
    openers = ("{", "｛") if expect is dict else ("[", "［")
    first_error: ReplyParseError | None = None
    for index, char in enumerate(text):
        if char not in openers:
            continue
        try:
            return _Parser(text, index).value()
        except ReplyParseError as exc:
            first_error = first_error or exc
    raise ReplyParseError(f"no JSON {'object' if expect is dict else 'array'} in the reply ({first_error or 'none found'})")


def normalize_text(text: str) -> str:
    """The form two questions share when they are the same question: NFKC, lower case, no
    punctuation, symbols or spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in text if unicodedata.category(c)[0] in ("L", "N"))
