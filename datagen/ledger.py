"""The cost ledger (requests.jsonl in the output folder): one line when a request is sent, one when
its reply is counted, each a single O_APPEND write, so a `kill -9` loses nothing already paid for.

A request whose reply never came (in flight at the kill, timed out, dropped) was still sent and its
prompt still billed: it counts as sent, with its prompt tokens estimated (`estimated_input`).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

LEDGER = "requests.jsonl"


@dataclass
class LedgerTotals:
    sent: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    estimated_in: int = 0  # prompt tokens of requests sent and never answered (estimated)


class Ledger:
    def __init__(self, out_dir: Path, carried: tuple[int, int, int] | None = None):
        path = out_dir / LEDGER
        fresh = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._ids = itertools.count(1)
        self._run = os.urandom(4).hex()
        if fresh and carried and any(carried):
            # a folder generated before the ledger existed: what its items recorded is the start
            self._write({"carried": True, "sent": carried[0], "in": carried[1], "out": carried[2]})

    def _write(self, entry: dict) -> None:
        os.write(self._fd, (json.dumps(entry) + "\n").encode())

    def sent(self, estimated_prompt_tokens: int) -> str:
        request_id = f"{self._run}-{next(self._ids)}"
        self._write({"id": request_id, "estimate_in": estimated_prompt_tokens})
        return request_id

    def answered(self, request_id: str, tokens_in: int, tokens_out: int) -> None:
        self._write({"id": request_id, "in": tokens_in, "out": tokens_out})

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


def ledger_totals(out_dir: Path) -> LedgerTotals | None:
    """What the ledger says was sent and spent; None for a folder without one."""
    path = out_dir / LEDGER
    if not path.exists():
        return None
    totals = LedgerTotals()
    unanswered: dict[str, int] = {}
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # torn by a kill mid-write
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("carried"):
                totals.sent += entry["sent"]
                totals.tokens_in += entry["in"]
                totals.tokens_out += entry["out"]
            elif "estimate_in" in entry:
                totals.sent += 1
                unanswered[entry["id"]] = entry["estimate_in"]
            elif unanswered.pop(entry.get("id"), None) is not None:
                totals.tokens_in += entry["in"]
                totals.tokens_out += entry["out"]
    totals.estimated_in = sum(unanswered.values())
    return totals
