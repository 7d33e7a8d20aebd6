"""What is in a dataset: rows, turns, characters per role, duplicates and a length histogram."""

from __future__ import annotations

import hashlib
import html
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stylewrap.adapters.files import detect_format, read_records
from stylewrap.adapters.progress import with_progress
from stylewrap.adapters.records import USER, Record
from stylewrap.errors import InputError

# Conversation length buckets (total characters), doubling from 32.
HISTOGRAM_EDGES = [32 * 2**i for i in range(12)]


def record_key(record: Record, *, normalized: bool = False, prompt_only: bool = False) -> int:
    """A 64-bit fingerprint of a record (or of its user turns), optionally after normalizing the text."""
    messages = [m for m in record.messages if m["role"] == USER] if prompt_only else record.messages
    parts = []
    for message in messages:
        text = normalize_text(message["content"]) if normalized else message["content"]
        parts.append(f"{message['role']}\x1f{text}")
    if not prompt_only:
        parts.append(record.tools or "")
    digest = hashlib.blake2b("\x1e".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def normalize_text(text: str) -> str:
    """Text as a reader would compare it: NFKC, case-folded, without whitespace and punctuation."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not (ch.isspace() or unicodedata.category(ch)[0] in "PZ"))


@dataclass
class RoleStats:
    messages: int = 0
    chars: int = 0
    max_chars: int = 0
    tokens: int | None = None


TokenCounter = Callable[[list[str]], list[int]]


def load_token_counter(path: str | Path) -> TokenCounter:
    """Token counts from a Hugging Face `tokenizer.json` (a file, or a model folder holding one)."""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"{file}: no such tokenizer file", hint="pass a tokenizer.json or a model folder that has one")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise InputError("token counts need the `tokenizers` package", hint="pip install tokenizers, or leave out --tokenizer") from None
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
        raise InputError(f"{file}: not a tokenizers file: {exc}") from None

    def count(texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return count


@dataclass
class DatasetStats:
    path: Path
    fmt: str
    rows: int = 0
    turns: int = 0
    with_system: int = 0
    with_tools: int = 0
    roles: dict[str, RoleStats] = field(default_factory=lambda: defaultdict(RoleStats))
    exact_duplicates: int = 0
    normalized_duplicates: int = 0
    duplicate_prompts: int = 0
    histogram: Counter = field(default_factory=Counter)

    def histogram_rows(self) -> list[tuple[str, int]]:
        rows = []
        low = 0
        for edge in HISTOGRAM_EDGES:
            rows.append((f"{low}-{edge - 1}", self.histogram.get(edge, 0)))
            low = edge
        rows.append((f">={low}", self.histogram.get(None, 0)))
        while rows and rows[-1][1] == 0:
            rows.pop()
        return rows

    def as_dict(self) -> dict:
        return {
            "file": str(self.path),
            "format": self.fmt,
            "rows": self.rows,
            "turns": self.turns,
            "rows_with_system": self.with_system,
            "rows_with_tools": self.with_tools,
            "roles": {role: vars(s) | {"mean_chars": round(s.chars / s.messages, 1) if s.messages else 0} for role, s in sorted(self.roles.items())},
            "duplicates": {"exact": self.exact_duplicates, "normalized": self.normalized_duplicates, "prompt": self.duplicate_prompts},
            "length_histogram_chars": dict(self.histogram_rows()),
        }


def _bucket(length: int) -> int | None:
    for edge in HISTOGRAM_EDGES:
        if length < edge:
            return edge
    return None


def dataset_stats(path: str | Path, fmt: str | None = None, *, count_tokens: TokenCounter | None = None, **options) -> DatasetStats:
    """One streaming pass; duplicate counting keeps one 64-bit fingerprint per distinct row.

    With `count_tokens` (see `load_token_counter`) each role also gets its token total.
    """
    path = Path(path)
    stats = DatasetStats(path, fmt or detect_format(path))
    seen_exact: set[int] = set()
    seen_normalized: set[int] = set()
    seen_prompts: set[int] = set()
    for record in with_progress(read_records(path, stats.fmt, **options), f"reading {path.name}"):
        stats.rows += 1
        length = 0
        if count_tokens is not None:
            for message, tokens in zip(record.messages, count_tokens([m["content"] for m in record.messages])):
                role_stats = stats.roles[message["role"]]
                role_stats.tokens = (role_stats.tokens or 0) + tokens
        for message in record.messages:
            role_stats = stats.roles[message["role"]]
            size = len(message["content"])
            role_stats.messages += 1
            role_stats.chars += size
            role_stats.max_chars = max(role_stats.max_chars, size)
            length += size
            if message["role"] == USER:
                stats.turns += 1
        stats.with_system += record.messages[0]["role"] == "system"
        stats.with_tools += bool(record.tools)
        stats.histogram[_bucket(length)] += 1
        for seen, key, attr in (
            (seen_exact, record_key(record), "exact_duplicates"),
            (seen_normalized, record_key(record, normalized=True), "normalized_duplicates"),
            (seen_prompts, record_key(record, prompt_only=True), "duplicate_prompts"),
        ):
            if key in seen:
                setattr(stats, attr, getattr(stats, attr) + 1)
            else:
                seen.add(key)
    return stats


STATS_CSS = """
body { font: 15px/1.5 system-ui, "WenQuanYi Zen Hei", sans-serif; margin: 2rem auto; max-width: 960px; padding: 0 1.5rem; color: #222; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; word-break: break-all; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.facts { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; padding: 0; list-style: none; }
.facts li { border: 1px solid #ddd; border-radius: 8px; padding: .5rem .9rem; background: #fafafa; }
.facts b { display: block; font-size: 1.4rem; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: .35rem .7rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img.chart { max-width: 100%; border: 1px solid #eee; } .note { color: #8a5a00; }
"""


def histogram_png(stats: DatasetStats) -> bytes | None:
    """The conversation-length histogram as a PNG (matplotlib, part of the eval extra); None without it."""
    try:
        figure = histogram_figure(stats)
    except ImportError:
        return None
    import io

    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def histogram_figure(stats: DatasetStats):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = stats.histogram_rows()
    figure, axes = pyplot.subplots(figsize=(9, 3.6), dpi=110, layout="constrained")
    bars = axes.bar([label for label, _ in rows], [count for _, count in rows], color="#4c78a8")
    axes.bar_label(bars, padding=2, fontsize=8)
    axes.margins(y=0.15)   # room above the tallest bar for its label, inside the picture
    axes.set_title(f"conversation length: {stats.rows} rows")
    axes.set_xlabel("characters per conversation")
    axes.set_ylabel("rows")
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def stats_html(stats: DatasetStats) -> str:
    """A self-contained HTML page: the numbers and the length histogram (a PNG inside the page)."""
    import base64

    data = stats.as_dict()
    role_rows = "".join(
        f"<tr><td>{html.escape(role)}</td><td>{s['messages']}</td><td>{s['chars']}</td><td>{s['mean_chars']}</td><td>{s['max_chars']}</td>"
        f"<td>{'-' if s['tokens'] is None else s['tokens']}</td></tr>"
        for role, s in data["roles"].items()
    )
    dup = data["duplicates"]
    png = histogram_png(stats)
    chart = (f'<img class="chart" alt="conversation length histogram" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
             if png else "<p class='note'>The chart needs matplotlib: pip install 'stylewrap[eval]'.</p>")
    facts = [("rows", stats.rows), ("turns", stats.turns), ("with a system prompt", stats.with_system),
             ("with tools", stats.with_tools), ("exact duplicates", dup["exact"]),
             ("duplicates after normalizing", dup["normalized"]), ("repeated prompts", dup["prompt"])]
    return (
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>stats: {html.escape(stats.path.name)}</title>"
        f"<style>{STATS_CSS}</style></head><body>"
        f"<h1>{html.escape(stats.path.name)}</h1><p>{html.escape(str(stats.path))} · format {stats.fmt} · {stats.rows} rows</p>"
        f"<ul class='facts'>{''.join(f'<li><b>{value}</b>{label}</li>' for label, value in facts)}</ul>"
        "<h2>Messages per role</h2><table><tr><th>role</th><th>messages</th><th>chars</th><th>mean</th><th>max</th><th>tokens</th></tr>"
        f"{role_rows}</table><h2>Conversation length</h2>{chart}</body></html>\n"
    )