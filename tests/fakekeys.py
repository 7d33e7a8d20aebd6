"""Key-shaped strings for the tests that plant secrets, assembled at run time.

The secret scan and redaction tests need values that look like real keys; written out literally,
they would make the repository itself look as if it leaked keys to every scanner that reads it.
Each value is deterministic for its seed, so a test can plant one and look for it again.
"""

from __future__ import annotations

import random
import string
import uuid

ALNUM = string.ascii_letters + string.digits


def random_text(seed: int, length: int, alphabet: str = ALNUM) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def openai_key(seed: int = 0) -> str:
    """`sk-` and 24 letters and digits, the shape the scan calls an OpenAI-style API key."""
    return "sk" + "-" + random_text(seed, 24)


def modelscope_token(seed: int = 0) -> str:
    """`ms-` and a UUID, the shape of a ModelScope access token."""
    return "ms" + "-" + str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))


def aws_access_key_id(seed: int = 0) -> str:
    return "AK" + "IA" + random_text(seed, 16, string.ascii_uppercase + string.digits)


def huggingface_token(seed: int = 0) -> str:
    return "hf" + "_" + random_text(seed, 34)


def private_key_header() -> str:
    return "-" * 5 + "BEGIN OPENSSH " + "PRIVATE KEY" + "-" * 5
