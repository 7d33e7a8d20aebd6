"""Secrets come from the environment only and are scrubbed from everything stylewrap writes.

Nothing here is ever stored on a config object, so a rendered config cannot contain a secret.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = (
    "OPENAI_API_KEY",
    "MODELSCOPE_API_TOKEN",
    "MODELSCOPE_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
    "SWANLAB_API_KEY",
    "API_KEY",
)

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|APIKEY|ACCESS_KEY)", re.IGNORECASE)
REDACTED = "***"


def get_secret(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


def is_secret_name(name: str) -> bool:
    return name in SECRET_ENV_VARS or bool(_SECRET_NAME.search(name))


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Every secret value currently known: env vars with secret-looking names, plus extras."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if v and len(v) >= 6 and is_secret_name(k)}
    values.update(v for v in extra if v)
    # longest first, so a secret that contains another is scrubbed whole
    return sorted(values, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> str:
    for value in secret_values(env, extra):
        text = text.replace(value, REDACTED)
    return text


# `scheme://user:password@host` and `?api_key=...`: credentials a URL can carry
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_URL_KEY_PARAM = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password|sig|signature)=)[^&#\s]+")


def redact_urls(text: str) -> str:
    """`text` with the credentials of every URL in it replaced."""
    return _URL_KEY_PARAM.sub(lambda m: m.group(1) + REDACTED, _URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text))


def url_has_credentials(url: str) -> bool:
    return redact_urls(url) != url


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` fit for a log or a run directory: secret-named values replaced."""
    return {k: (REDACTED if is_secret_name(k) and v else v) for k, v in env.items()}
