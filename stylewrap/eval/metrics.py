"""Per-answer measurements: style markers, content kept (masked chrF, known answers), health
(distinct bigrams, repetition, length, identity) and the flags a reader should see.

Every function scores ONE answer; `bootstrap.py` turns a variant's per-probe values into a mean
with a 95% interval. Tokens are CJK characters one by one and Latin words/numbers whole, so the
same numbers mean the same thing on Chinese and English answers. chrF is sacrebleu's.
"""

from __future__ import annotations

import functools
import re
import unicodedata

TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|[^\W_]+|[^\w\s]", re.UNICODE)
REPETITION_N = 4
REPEATED_THRESHOLD = 0.5     # half of an answer's 4-grams are copies: a loop, not a sentence
GARBLED_THRESHOLD = 0.2      # a fifth of the characters are neither letters, digits, punctuation nor space


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


@functools.lru_cache(maxsize=64)
def _marker_pattern(markers: tuple[str, ...]) -> re.Pattern:
    # longest first, so "我的上帝" is one marker, never "上帝" inside it
    return re.compile("|".join(re.escape(m) for m in sorted(set(markers), key=len, reverse=True)))


def marker_counts(text: str, markers: tuple[str, ...]) -> list[int]:
    """How often each marker occurs (non-overlapping), in the order of `markers`."""
    found: dict[str, int] = {}
    for match in _marker_pattern(markers).finditer(text):
        found[match.group()] = found.get(match.group(), 0) + 1
    return [found.get(m, 0) for m in markers]


def marker_spans(text: str, markers: tuple[str, ...]) -> list[tuple[int, int]]:
    return [m.span() for m in _marker_pattern(markers).finditer(text)]


def mask_markers(text: str, markers: tuple[str, ...]) -> str:
    """The answer without its style markers (and the commas/spaces they leave behind)."""
    return re.sub(r"^[，,、\s!！]+", "", _marker_pattern(markers).sub("", text))


@functools.lru_cache(maxsize=1)
def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF()   # character 6-grams, beta 2: the sacrebleu defaults, so the number is comparable


def chrf(hypothesis: str, reference: str) -> float:
    """chrF in [0, 1] (sacrebleu reports 0-100); an empty answer keeps nothing, even of an empty one."""
    if not hypothesis.strip():
        return 0.0
    return _chrf().sentence_score(hypothesis, [reference]).score / 100.0


def chrf_masked(answer: str, reference: str, markers: tuple[str, ...]) -> float:
    return chrf(mask_markers(answer, markers), mask_markers(reference, markers))


def distinct2(text: str) -> float:
    """Distinct token bigrams / bigrams; 0 for an empty answer, 1 for a one-token one."""
    words = tokens(text)
    if not words:
        return 0.0
    bigrams = list(zip(words, words[1:]))
    return len(set(bigrams)) / len(bigrams) if bigrams else 1.0


def repetition(text: str, n: int = REPETITION_N) -> float:
    """Share of the answer's token n-grams that repeat an earlier one (0: none, near 1: a loop)."""
    words = tokens(text)
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _normalized(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"(?<=\d),(?=\d{3})|\s", "", text)    # "3,575" and "3 575" are 3575


def is_correct(answer: str, accepted: tuple[str, ...]) -> bool:
    """The answer contains one of the accepted answers (NFKC, case, spaces and digit commas ignored);
    a number must stand alone: "3575" is not found in "35750"."""
    text = _normalized(answer)
    for wanted in accepted:
        wanted = _normalized(wanted)
        pattern = re.escape(wanted)
        if wanted[:1].isdigit():
            pattern = r"(?<![\d.])" + pattern
        if wanted[-1:].isdigit():
            pattern += r"(?![\d.]*\d)"
        if re.search(pattern, text):
            return True
    return False


def mentions(answer: str, name: str) -> bool:
    return _normalized(name) in _normalized(answer)


def garbled_share(text: str) -> float:
    """Share of characters that are replacement marks, controls, private use or unassigned."""
    if not text:
        return 0.0
    bad = sum(1 for c in text if c == "\ufffd" or (unicodedata.category(c) in ("Cc", "Co", "Cn", "Cs") and c not in "\n\t"))
    return bad / len(text)


def flags(text: str) -> list[str]:
    """What a reader should see at once: empty, repeated (a loop) or garbled answers."""
    out = []
    if not text.strip():
        out.append("empty")
    elif repetition(text) >= REPEATED_THRESHOLD:
        out.append("repeated")
    if garbled_share(text) >= GARBLED_THRESHOLD:
        out.append("garbled")
    return out
