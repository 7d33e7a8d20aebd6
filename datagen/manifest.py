"""The run manifest (manifest.json in the output folder) and its summary table.

Token counts come from the usage stored on every checkpoint and errors line, so they survive a
`kill -9` and add up across resumed runs; request counters and durations add up across the runs
recorded in the previous manifest. Never holds a key or the base URL (it may carry a token).
"""

from __future__ import annotations

import json
from pathlib import Path

from stylewrap.fsutil import atomic_write_json

MANIFEST = "manifest.json"


def read_manifest(out_dir: Path) -> dict | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def usage_totals(*record_lists: list[dict]) -> tuple[int, int, int]:
    """(requests, tokens in, tokens out) recorded on finished and failed items."""
    requests = tokens_in = tokens_out = 0
    for records in record_lists:
        for record in records:
            usage = record.get("usage") or {}
            requests += usage.get("requests", 0)
            tokens_in += usage.get("tokens_in", 0)
            tokens_out += usage.get("tokens_out", 0)
    return requests, tokens_in, tokens_out


def cost(tokens_in: int, tokens_out: int, price_in_per_1k: float, price_out_per_1k: float) -> float:
    return round(tokens_in / 1000 * price_in_per_1k + tokens_out / 1000 * price_out_per_1k, 6)


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    return atomic_write_json(out_dir / MANIFEST, manifest)


def summary_table(manifest: dict):
    from rich.table import Table

    table = Table(title=f"datagen: {manifest['status']} ({manifest['preset']} via {manifest['teacher_model']})")
    for column in ("stage", "requested", "done", "errors", "resumed"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, counts in manifest["stages"].items():
        table.add_row(stage, *(str(counts.get(k, "")) for k in ("requested", "done", "errors", "resumed")))
    tokens, requests = manifest["tokens"], manifest["requests"]
    table.caption = (
        f"tokens in {tokens['input']:,} / out {tokens['output']:,}  cost ${manifest['cost_usd']:.4f}  "
        f"requests {requests['sent']:,} (retries {requests['retries']:,})  "
        f"duplicates rejected {manifest['duplicates_rejected']:,}  {manifest['duration_s']:.1f}s"
    )
    return table
