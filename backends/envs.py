"""Where each backend's managed virtual environment lives and how to reach its programs.

llamafactory and ms-swift pin incompatible transformers/datasets versions, so each gets its own venv
under `envs_dir/<name>` (default ~/.cache/stylewrap/envs; override with STYLEWRAP_ENVS_DIR or
`backends.envs_dir`). A user who already has the program points `backends.<name>.executable` or
`backends.<name>.venv` at it instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from stylewrap.config import StylewrapConfig

ENVS_DIR_VAR = "STYLEWRAP_ENVS_DIR"
DEFAULT_ENVS_DIR = Path("~/.cache/stylewrap/envs")


def envs_dir(config: StylewrapConfig | None = None) -> Path:
    if os.environ.get(ENVS_DIR_VAR):
        return Path(os.environ[ENVS_DIR_VAR]).expanduser()
    if config is not None and config.backends.envs_dir:
        return Path(config.backends.envs_dir).expanduser()
    return DEFAULT_ENVS_DIR.expanduser()


def env_dir(name: str, config: StylewrapConfig | None = None) -> Path:
    """The venv folder for backend `name`: the user's own venv if configured, else the managed one."""
    if config is not None:
        own = getattr(config.backends, name).venv
        if own:
            return Path(own).expanduser()
    return envs_dir(config) / name


def env_python(name: str, config: StylewrapConfig | None = None) -> Path | None:
    """The python of backend `name`'s environment, or None when it is not installed."""
    python = env_dir(name, config) / "bin" / "python"
    return python if python.exists() else None
