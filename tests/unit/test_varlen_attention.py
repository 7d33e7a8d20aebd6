"""ms-swift's packing through PyTorch's varlen FlashAttention kernel (backends/swift/varlen_attention.py),
checked in the swift env on the CPU: packed rows train as if alone, through the fallback this CPU gets
and through the varlen path with a reference kernel; a padded batch keeps SDPA; ms-swift lets packing
through for this implementation only. The CUDA kernel itself is measured in bench/gpu."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from backendloaders import backend_python
from stylewrap.backends.swift import VARLEN_PLUGIN

CHECKS = Path(__file__).parents[1] / "swiftenv_varlen.py"


@pytest.mark.integration
def test_packed_rows_stay_apart_and_the_fallback_says_why():
    python = backend_python("swift")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(python), str(CHECKS), VARLEN_PLUGIN], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    passed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ok ")]
    assert passed == ["guards", "fallback", "varlen", "segments", "padded", "ms-swift"]
    # the fallback is never silent: its reason is in the run's log
    assert "instead of the varlen kernel (no CUDA device" in proc.stderr
