"""Jinja2 (StrictUndefined) rendering of the package templates in `stylewrap/templates`."""

from __future__ import annotations

import shlex
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from stylewrap.backends.deepspeed import DEEPSPEED_PRESETS



def _yaml(mapping: dict[str, Any]) -> str:
    return yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False, default_flow_style=False, width=10_000).rstrip()


@lru_cache(maxsize=1)
def environment():
    import jinja2

    root = resources.files("stylewrap.templates")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (root / name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml"] = _yaml
    env.filters["shell"] = lambda value: shlex.quote(str(value))
    env.filters["md_cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", "<br>") or " "
    env.filters["shell_join"] = lambda argv: shlex.join(str(a) for a in argv)
    return env


def render(template: str, **context: Any) -> str:
    """The rendered text, with the value of every secret in the environment scrubbed: a key typed
    into --set or extra_args by mistake never reaches a file."""
    from stylewrap.secrets import redact

    return redact(environment().get_template(template).render(**context))


def render_deepspeed(preset: str) -> str:
    stage, offload = DEEPSPEED_PRESETS[preset]
    return render("deepspeed.json.j2", stage=stage, offload=offload)
