"""`stylewrap deploy` on ms-swift answers a burst of concurrent requests as one batch.

ms-swift's engine batches only what is queued the moment its worker looks; on an H200, 16 streams
sent at once were answered as a few and then, one whole answer later, the rest (72.8 tok/s; 371 with
the burst gathered, docs/benchmarks.md). The plugin is checked against ms-swift's real worker code
in the swift env; the GPU figures are bench/gpu/serve_bench.py's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from backendloaders import backend_python

from stylewrap.backends.swift import BATCHING_PLUGIN

CHECK = Path(__file__).parents[1] / "swiftenv_batching.py"


def batches(window_ms: str, gap_ms: str) -> list[int]:
    proc = subprocess.run([str(backend_python("swift")), str(CHECK), BATCHING_PLUGIN, window_ms, gap_ms],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("batches"))
    return [int(size) for size in line.split()[1:]]


@pytest.mark.integration
def test_a_burst_of_sixteen_requests_is_one_batch():
    # 16 requests 2 ms apart (a burst of clients); a window far above the gap, so that a loaded
    # machine's scheduling delays cannot split it
    assert batches("200", "2") == [16]


@pytest.mark.integration
def test_requests_further_apart_than_the_window_are_not_held_back():
    # 80 ms apart with a 20 ms window: each is answered on its own, none waits for the next
    assert batches("20", "80") == [1] * 16


CUDNN_CHECK = """
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("serve_launcher", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
torch.cuda.is_available = lambda: True   # the launcher's branch for a GPU, on this CPU
launcher.attention_without_cudnn()
print("cudnn_sdp", torch.backends.cuda.cudnn_sdp_enabled())
"""


@pytest.mark.integration
@pytest.mark.parametrize("keep", [None, "1"])
def test_the_server_keeps_attention_off_cudnn_on_a_gpu(keep):
    """Both backends generate each answer in a new thread and PyTorch caches cuDNN attention's plans
    per thread: a lone answer on an H200 took 12.1 s with it, 3.5 s without (ms-swift; LLaMA-Factory
    10.5 and 3.6). STYLEWRAP_CUDNN_SDPA=1 keeps it, for the benchmark's before-arm."""
    from stylewrap.backends.serving import LAUNCHER

    env = {key: value for key, value in os.environ.items() if key != "STYLEWRAP_CUDNN_SDPA"}
    if keep:
        env["STYLEWRAP_CUDNN_SDPA"] = keep
    proc = subprocess.run([str(backend_python("llamafactory")), "-c", CUDNN_CHECK, str(LAUNCHER)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"cudnn_sdp {bool(keep)}" in proc.stdout
