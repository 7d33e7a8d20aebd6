"""An ms-swift plugin (`--external_plugins`) for `swift deploy`: requests that arrive together are
answered in one batch.

ms-swift's transformers engine batches up to `max_batch_size` requests, but its worker takes only
what is queued at the moment it looks (every 10 ms) and then generates that batch to the end.
Concurrent requests reach the queue a few milliseconds apart (each is parsed and templated first),
so 16 streams sent at once were answered as a batch of a few and then, one whole answer later, the
rest: the first token of most streams waited for another stream's complete answer. With this plugin
the worker, once it sees a request, keeps looking while more keep arriving — until none has come
for `QUIET_S`, the batch is full, or `MAX_WAIT_S` has passed — so a burst becomes one batch and a
lone request waits at most `QUIET_S`.

`STYLEWRAP_BATCH_WINDOW_MS` (set by `stylewrap deploy` from `deploy.batch_window_ms`) is the
quiet time in milliseconds; 0 leaves ms-swift's own behaviour. Written against ms-swift 4.6's
`TransformersEngine._fetch_infer_requests` (a private method): another version is left alone, with
a line in the server log saying so.
"""

import os
import time

from swift.infer_engine import TransformersEngine

QUIET_S = float(os.environ.get("STYLEWRAP_BATCH_WINDOW_MS", "20")) / 1000
MAX_WAIT_S = max(0.1, 5 * QUIET_S)


def _queued(engine) -> int:
    return engine._queue.qsize() + sum(len(data) for _, data in engine._task_pool.values())


def _gathering(fetch):
    def fetch_when_gathered(self):
        waiting = _queued(self)
        if waiting:
            limit = self.max_batch_size if self.max_batch_size > 0 else float("inf")
            deadline = time.monotonic() + MAX_WAIT_S
            while waiting < limit and time.monotonic() < deadline:
                time.sleep(QUIET_S)
                now = _queued(self)
                if now == waiting:
                    break
                waiting = now
        return fetch(self)

    return fetch_when_gathered


if QUIET_S > 0:
    if hasattr(TransformersEngine, "_fetch_infer_requests"):
        TransformersEngine._fetch_infer_requests = _gathering(TransformersEngine._fetch_infer_requests)
        print(f"[stylewrap] batching: requests arriving within {QUIET_S * 1000:.0f} ms of each other share a batch",
              flush=True)
    else:
        print("[stylewrap] batching: this ms-swift has no _fetch_infer_requests; batches as it does", flush=True)
