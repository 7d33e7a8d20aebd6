"""Run one stage's items through the teacher: a fixed pool of workers, each finished item
appended to the stage checkpoint (or the errors file) the moment it is done, finished ids
skipped on a rerun."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Awaitable, Callable, Iterable

from stylewrap.datagen.client import Completion, RequestFailed
from stylewrap.datagen.progress import SilentProgress
from stylewrap.datagen.sink import Checkpoint


@dataclass
class ItemUsage:
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    def add(self, completion: Completion) -> None:
        self.requests += 1
        self.tokens_in += completion.prompt_tokens
        self.tokens_out += completion.completion_tokens


class ItemFailed(Exception):
    """This item cannot be finished: why, and the teacher's last raw reply."""

    def __init__(self, reason: str, raw: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


@dataclass
class WorkItem:
    id: str
    payload: dict


@dataclass
class StageCounts:
    requested: int = 0
    done: int = 0
    errors: int = 0
    resumed: int = 0  # finished by an earlier run, not sent again


Process = Callable[[WorkItem, ItemUsage], Awaitable[dict]]


async def run_items(
    stage: str,
    items: Iterable[WorkItem],
    process: Process,
    *,
    done: Checkpoint,
    errors: Checkpoint,
    concurrency: int,
    progress: SilentProgress,
) -> StageCounts:
    items = list(items)
    counts = StageCounts(requested=len(items))
    pending: asyncio.Queue[WorkItem] = asyncio.Queue()
    for item in items:
        if item.id in done or item.id in errors:
            counts.resumed += 1
        else:
            pending.put_nowait(item)
    progress.start(stage, len(items), counts.resumed)

    async def worker() -> None:
        while True:
            try:
                item = pending.get_nowait()
            except asyncio.QueueEmpty:
                return
            usage = ItemUsage()
            try:
                record = await process(item, usage)
            except (ItemFailed, RequestFailed) as exc:
                errors.append({"id": item.id, "stage": stage, "reason": exc.reason, "input": item.payload,
                               "raw": getattr(exc, "raw", None), "usage": asdict(usage)})
                progress.advance(stage, failed=True)
            else:
                done.append({"id": item.id, **record, "usage": asdict(usage)})
                progress.advance(stage, failed=False)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, max(1, pending.qsize())))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    ids = {item.id for item in items}
    counts.done = sum(1 for item_id in ids if item_id in done)
    counts.errors = sum(1 for item_id in ids if item_id in errors and item_id not in done)
    return counts
