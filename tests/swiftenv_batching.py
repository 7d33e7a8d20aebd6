"""Run in the swift env by tests/unit/test_serve_batching.py: does the batching plugin make ms-swift's
real worker take a burst of requests as one batch?

    python swiftenv_batching.py PLUGIN WINDOW_MS GAP_MS

ms-swift's own `_fetch_infer_requests` (patched by the plugin when WINDOW_MS > 0) is driven the way
its `_infer_worker` drives it (a look every 10 ms) while 16 requests reach its queue GAP_MS apart.
Prints the batch sizes, in order.
"""

import importlib.util
import os
import queue
import sys
import threading
import time

plugin, window_ms, gap_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.environ["STYLEWRAP_BATCH_WINDOW_MS"] = window_ms
spec = importlib.util.spec_from_file_location("serve_batching", plugin)
spec.loader.exec_module(importlib.util.module_from_spec(spec))

from swift.infer_engine import TransformersEngine  # noqa: E402  (after the plugin, as ms-swift loads it)

# no model: only what the worker reads
engine = TransformersEngine.__new__(TransformersEngine)
engine._queue, engine._task_pool, engine.max_batch_size = queue.Queue(), {}, 16
REQUESTS = 16


def arrive():
    for i in range(REQUESTS):
        engine._queue.put((f"request {i}", {"request_config": "same settings", "adapter_request": None}, None))
        time.sleep(gap_ms / 1000)


threading.Thread(target=arrive).start()
batches = []
while sum(batches) < REQUESTS:
    time.sleep(0.01)
    item = engine._fetch_infer_requests()
    if item is not None:
        batches.append(len(item[0]["infer_requests"]))
print("batches", *batches)
