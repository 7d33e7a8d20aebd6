"""`stylewrap webui`: a backend's own training UI (`swift web-ui`, LLaMA-Factory's LLaMA Board),
started from its managed env and bound where stylewrap says (127.0.0.1 unless told otherwise).

stylewrap's `app` is a chat page for a deployed model; these UIs train, evaluate and export
through forms, as the SWIFT tutorial's 界面化 section shows. Both are Gradio apps, which
`stylewrap backend install NAME --webui` adds to the env.
"""

from __future__ import annotations

from stylewrap.backends.base import get_backend
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError
from stylewrap.runner import Invocation

DEFAULT_PORT = 7860


def plan_webui(config: StylewrapConfig, backend_name: str | None, host: str, port: int) -> Invocation:
    backend = get_backend(backend_name or config.train.backend, config)
    backend.require_installed()
    installed = backend.installed()
    if installed and "gradio" not in installed:
        raise InputError(f"{backend.name}'s training UI needs Gradio, which its env does not have",
                         hint=f"stylewrap backend install {backend.name} --webui")
    return backend.webui_invocation(host, port)


def run_webui(invocation: Invocation, echo) -> int:
    """Run the UI in the foreground until it exits or Ctrl-C; its exit code."""
    from stylewrap import runner

    # in the terminal's process group: Ctrl-C reaches the UI as it does stylewrap
    return runner.run(invocation, echo=echo).returncode
