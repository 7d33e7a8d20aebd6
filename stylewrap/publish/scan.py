"""The secret scan every byte passes before it leaves the machine: the values of secret
environment variables, and key-shaped strings. One hit refuses the whole upload, naming file:line.
"""

from __future__ import annotations

import re
import struct
from typing import Iterable

from stylewrap.errors import InputError, Location
from stylewrap.publish.plan import PlannedFile, UploadPlan
from stylewrap.secrets import secret_values

# Key-shaped strings; a match anywhere in a file stops the upload. Names are safe to print.
# Each pattern has lowercase anchors: a fast `bytes.find` for them picks the few places worth a
# regex, so gigabytes of weights scan at memory speed instead of regex speed.
KEY_PATTERNS = (
    ("an OpenAI-style API key", (b"sk-",),
     re.compile(rb"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("a ModelScope token", (b"ms-",),
     re.compile(rb"ms-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("a Hugging Face token", (b"hf_",), re.compile(rb"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}")),
    ("a GitHub token", (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
     re.compile(rb"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}")),
    ("an AWS access key", (b"akia",), re.compile(rb"(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])")),
    ("a private key", (b"private key-----",), re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a secret assignment", (b"api_key", b"api-key", b"apikey", b"secret", b"access_token", b"access-token",
                             b"auth_token", b"auth-token", b"password"),
     re.compile(rb"(?i)(?:api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|password)"
                rb"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9_\-./+]{16,}")),
)
ANCHOR_REACH = 64      # how far before an anchor a match may start (e.g. "client_" before "secret")
MATCH_REACH = 512      # how far after it a match may end
SCAN_OVERLAP = 4096


def _line_of(data: bytes, offset: int, lines_before: int) -> int:
    return lines_before + data.count(b"\n", 0, offset) + 1


def _find_key(data: bytes) -> tuple[str, int] | None:
    lowered = data.lower()
    for kind, anchors, pattern in KEY_PATTERNS:
        for anchor in anchors:
            hit = lowered.find(anchor)
            while hit >= 0:
                match = pattern.search(data, max(0, hit - ANCHOR_REACH), hit + MATCH_REACH)
                if match is not None:
                    return kind, match.start()
                hit = lowered.find(anchor, hit + 1)
    return None


def _text_scope(planned: PlannedFile) -> int | None:
    """How many leading bytes can hold text; None for all. Past its JSON header a safetensors
    file is raw numbers by definition, so key patterns (slow) are not run there; the literal
    search for known secret values (fast) still covers every byte."""
    if planned.source is None or not planned.path_in_repo.endswith(".safetensors"):
        return None
    with open(planned.source, "rb") as handle:
        head = handle.read(8)
    return 8 + struct.unpack("<Q", head)[0] if len(head) == 8 else None


def scan_for_secrets(plan: UploadPlan, extra_secrets: Iterable[str] = ()) -> None:
    """Refuse the whole upload if any file holds a known secret value or a key-like string."""
    literals = [s.encode() for s in secret_values(extra=extra_secrets)]
    for planned in plan.files:
        scope = _text_scope(planned)
        consumed = 0       # bytes of the file before the current chunk
        lines_before = 0
        tail = b""
        for chunk in planned.chunks():
            window = tail + chunk
            window_start = consumed - len(tail)
            base_lines = lines_before - tail.count(b"\n")
            for secret in literals:
                offset = window.find(secret)
                if offset >= 0:
                    raise InputError(
                        "refusing to upload: the file contains the value of a secret environment variable",
                        location=Location(planned.origin, _line_of(window, offset, base_lines)),
                        hint="remove it from the file; secrets belong in the environment only",
                    )
            text = window if scope is None else window[:max(0, scope - window_start)]
            found = _find_key(text) if text else None
            if found is not None:
                kind, offset = found
                raise InputError(
                    f"refusing to upload: the file contains what looks like {kind}",
                    location=Location(planned.origin, _line_of(window, offset, base_lines)),
                    hint="remove or rotate it; nothing was uploaded",
                )
            consumed += len(chunk)
            lines_before += chunk.count(b"\n")
            tail = window[-SCAN_OVERLAP:]
