"""The secret scan every byte passes before it leaves the machine: the values of secret
environment variables (and of every variable configured to hold a key), and key-shaped strings.
One hit refuses the whole upload, naming file:line.

The key shapes are detect-secrets' (Yelp's maintained scanner: one regex rule set per provider,
AWS, GitHub, GitLab, Slack, Stripe, SendGrid, PyPI, npm, JWT, private keys, ...), compiled for
bytes, plus the few it lacks, taken from gitleaks' rules (GitHub fine-grained tokens, Google API
keys) and the hubs stylewrap talks to (ModelScope, Hugging Face, OpenAI project keys). Each window
is also scanned decoded: JSON `\\uXXXX` escapes undone and UTF-16 text read as text, so a key
cannot hide behind an encoding.
"""

from __future__ import annotations

import functools
import re
import struct
from typing import Iterable

from stylewrap.errors import InputError, Location
from stylewrap.publish.plan import PlannedFile, UploadPlan
from stylewrap.secrets import secret_values

# detect-secrets rules left out: they match ordinary words or numbers in datasets and vocabularies
# (Artifactory's "AP" + 9 letters matches English words) or are not secrets (public IPs); the
# entropy and keyword detectors judge source code, not data.
SKIPPED_RULES = frozenset({"ArtifactoryDetector", "IPPublicDetector"})

# Lower-case literals every match of a rule contains; a fast `bytes.find` for them picks the few
# places worth a regex, so gigabytes scan at memory speed. A rule without one runs over the text.
ANCHORS = {
    "AWSKeyDetector": (b"a3t", b"abia", b"acca", b"akia", b"asia", b"aws"),
    "AzureStorageKeyDetector": (b"accountkey=",),
    "BasicAuthDetector": (b"://",),
    # the vendor keyword rules below also take short forms ("cl_key=", "sl_pw="); their long names
    # are the anchors, and the generic `secret assignment` rule covers the rest
    "CloudantDetector": (b"cloudant",),
    "IbmCloudIamDetector": (b"iam",),
    "IbmCosHmacDetector": (b"secret",),
    "SoftlayerDetector": (b"softlayer",),
    "GitHubTokenDetector": (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
    "GitLabTokenDetector": (b"glpat-", b"gldt-", b"glft-", b"glsoat-", b"glrt-", b"gr1348941", b"glcbt-", b"glimt-",
                            b"glptt-", b"glagent-", b"gloas-"),
    "JwtTokenDetector": (b"eyj",),
    "MailchimpDetector": (b"-us",),
    "NpmDetector": (b"_authtoken",),
    "OpenAIDetector": (b"t3blbkfj",),
    "PrivateKeyDetector": (b"private key", b"putty-user-key"),
    "PypiTokenDetector": (b"pypi-",),
    "SendGridDetector": (b"sg.",),
    "SlackDetector": (b"xox", b"hooks.slack.com"),
    "SquareOAuthDetector": (b"sq0csp-",),
    "StripeDetector": (b"k_live_",),
}

# What detect-secrets 1.5 lacks: (kind, anchors, patterns)
EXTRA_RULES = (
    ("an OpenAI-style API key", (b"sk-",),
     (re.compile(rb"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),)),
    ("a ModelScope token", (b"ms-",),
     (re.compile(rb"ms-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),)),
    ("a Hugging Face token", (b"hf_",), (re.compile(rb"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),)),
    ("a GitHub fine-grained token", (b"github_pat_",), (re.compile(rb"github_pat_[A-Za-z0-9_]{22,}"),)),
    ("a Google API key", (b"aiza",), (re.compile(rb"AIza[0-9A-Za-z_\-]{35}"),)),
    ("a secret assignment", (b"api_key", b"api-key", b"apikey", b"secret", b"access_token", b"access-token",
                             b"auth_token", b"auth-token", b"password"),
     (re.compile(rb"(?i)(?:api[_-]?key|secret(?:[_-]?access)?[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token"
                 rb"|password)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9_\-./+]{16,}"),)),
)
ANCHOR_REACH = 64      # how far before an anchor a match may start (e.g. "client_" before "secret")
MATCH_REACH = 1100     # how far after it a match may end (a GitLab agent token runs to 1,032 characters)
SCAN_OVERLAP = 4096
_JSON_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})|\\/")


Rule = tuple[str, "tuple[bytes, ...] | None", "tuple[re.Pattern, ...]"]


@functools.lru_cache(maxsize=1)
def key_rules() -> tuple[Rule, ...]:
    """(kind, anchors or None, bytes patterns) per provider, detect-secrets' first."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    rules = []
    for secret_type, plugin in sorted(get_mapping_from_secret_type_to_class().items()):
        if not issubclass(plugin, RegexBasedDetector) or plugin.__name__ in SKIPPED_RULES:
            continue
        patterns = tuple(re.compile(p.pattern.encode("ascii"), p.flags & ~re.UNICODE) for p in plugin().denylist)
        article = "an" if secret_type[0] in "AEIOU" else "a"
        rules.append((f"{article} {secret_type}", ANCHORS.get(plugin.__name__), patterns))
    return tuple(rules) + EXTRA_RULES


def _line_of(data: bytes, offset: int, lines_before: int) -> int:
    return lines_before + data.count(b"\n", 0, offset) + 1


def _find_key(data: bytes) -> tuple[str, int] | None:
    lowered = data.lower()
    for kind, anchors, patterns in key_rules():
        if anchors is None:
            for pattern in patterns:
                match = pattern.search(data)
                if match is not None:
                    return kind, match.start()
            continue
        for anchor in anchors:
            hit = lowered.find(anchor)
            while hit >= 0:
                start, end = max(0, hit - ANCHOR_REACH), hit + MATCH_REACH
                for pattern in patterns:
                    match = pattern.search(data, start, end)
                    if match is not None:
                        return kind, match.start()
                hit = lowered.find(anchor, hit + 1)
    return None


def _json_unescaped(match: re.Match) -> bytes:
    if match.group(1) is None:
        return b"/"
    char = chr(int(match.group(1), 16))
    # a line break or a surrogate half stays escaped: line numbers stay right, nothing to hide there
    return match.group(0) if char in "\r\n" or 0xD800 <= ord(char) <= 0xDFFF else char.encode("utf-8")


def decoded_views(window: bytes) -> list[bytes]:
    """The window as written, and as a reader of it would decode it: JSON escapes undone, and
    UTF-16 (either byte order) with its zero bytes dropped (ASCII keys come out whole)."""
    views = [window]
    if b"\\" in window:
        unescaped = _JSON_ESCAPE.sub(_json_unescaped, window)
        if unescaped != window:
            views.append(unescaped)
    if b"\x00" in window and window.count(b"\x00") * 4 >= len(window):
        views.append(window.replace(b"\x00", b""))
    return views


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
            text = window if scope is None else window[:max(0, scope - window_start)]
            views = decoded_views(text) if text else [text]
            # raw bytes everywhere (weights too); decoded views only where text can be
            for view in [window, *views[1:]]:
                _check_literals(view, literals, planned, base_lines)
            for view in views if text else []:
                found = _find_key(view)
                if found is not None:
                    kind, offset = found
                    raise InputError(
                        f"refusing to upload: the file contains what looks like {kind}",
                        location=Location(planned.origin, _line_of(view, offset, base_lines)),
                        hint="remove or rotate it; nothing was uploaded",
                    )
            consumed += len(chunk)
            lines_before += chunk.count(b"\n")
            tail = window[-SCAN_OVERLAP:]


def _check_literals(view: bytes, literals: list[bytes], planned: PlannedFile, base_lines: int) -> None:
    for secret in literals:
        offset = view.find(secret)
        if offset >= 0:
            raise InputError(
                "refusing to upload: the file contains the value of a secret environment variable",
                location=Location(planned.origin, _line_of(view, offset, base_lines)),
                hint="remove it from the file; secrets belong in the environment only",
            )
