"""Run one stage's items through the teacher: a fixed pool of workers, each finished item
appended to the stage checkpoint (or the errors file) the moment it is done, finished ids
skipped on a rerun.

An error is final when the item itself is at fault (the teacher's replies were rejected, the
server refused the request). An error of the connection (retries ran out on 429/5xx/timeouts)
is recorded as retryable: the next run sends that item again instead of trusting an outage.
"""

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
    retryable: int = 0  # errors a rerun will try again (the endpoint failed, not the item)
    resumed: int = 0  # finished by an earlier run, not sent again
    skipped: int = 0  # input rows repeating an earlier row (or its first question), never items


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
    retry_errors: bool = False,
) -> StageCounts:
    items = list(items)
    counts = StageCounts(requested=len(items))
    pending: asyncio.Queue[WorkItem] = asyncio.Queue()
    for item in items:
        if item.id in done or (is_final_error(errors, item.id) and not retry_errors):
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
                               "raw": getattr(exc, "raw", None), "final": getattr(exc, "final", True), "usage": asdict(usage)})
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
    # errors.jsonl lists what is still failed: an item that failed once and then succeeded leaves it
    errors.forget([item_id for item_id in ids if item_id in done])
    counts.done = sum(1 for item_id in ids if item_id in done)
    failed = [item_id for item_id in ids if item_id in errors and item_id not in done]
    counts.errors = len(failed)
    counts.retryable = sum(1 for item_id in failed if not is_final_error(errors, item_id))
    return counts


def is_final_error(errors: Checkpoint, item_id: str) -> bool:
    record = errors.records.get(item_id)
    return record is not None and record.get("final", True)
