"""Read files back with each backend's own data code, in its own env (scripts in
integration/backend_loaders, each printing one JSON line)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stylewrap.backends.envs import env_python

LOADERS = Path(__file__).parent / "integration" / "backend_loaders"


def backend_python(name: str) -> Path:
    python = env_python(name)
    if python is None:
        pytest.skip(f"no {name} environment (stylewrap backend install {name}, or STYLEWRAP_ENVS_DIR)")
    return python


def load_with_backend(python: Path, script: str, *args: str, tmp_path: Path) -> dict:
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf"), "MODELSCOPE_CACHE": str(tmp_path / "ms"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"}
    proc = subprocess.run([str(python), str(LOADERS / script), *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
