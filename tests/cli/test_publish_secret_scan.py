"""`stylewrap publish dataset --dry-run` (the installed console script) on data that hides a
secret: each of 25 planted kinds is refused with exit 2 naming file:line, nothing uploaded.
Keys are assembled at run time (tests/fakekeys.py explains why)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from console import run_stylewrap
from fakekeys import (ALNUM, aws_access_key_id, huggingface_token, modelscope_token, openai_key, private_key_header,
                      random_text)

LOWER_ALNUM = string.ascii_lowercase + string.digits


def joined(*parts: str) -> str:
    return "".join(parts)


def json_escaped(text: str) -> str:
    return "".join(f"\\u{ord(char):04x}" for char in text)


PLANTED = {
    "openai": lambda: openai_key(1),
    "openai-project": lambda: joined("sk-", "proj-", random_text(2, 40)),
    "modelscope": lambda: modelscope_token(3),
    "huggingface": lambda: huggingface_token(4),
    "github-classic": lambda: joined("gh", "p_", random_text(5, 36)),
    "github-fine-grained": lambda: joined("github", "_pat_", random_text(6, 22), "_", random_text(7, 59)),
    "gitlab": lambda: joined("gl", "pat-", random_text(8, 20)),
    "google-api": lambda: joined("AI", "za", random_text(9, 35)),
    "stripe-live": lambda: joined("sk", "_live_", random_text(10, 24)),
    "slack-bot": lambda: joined("xo", "xb-", "1234567890-", "2345678901-", random_text(11, 24, LOWER_ALNUM)),
    "slack-webhook": lambda: joined("https://hooks.", "slack.com/services/T", random_text(12, 8), "/B", random_text(13, 8),
                                    "/", random_text(14, 24)),
    "aws-access-key": lambda: aws_access_key_id(15),
    "aws-secret-assignment": lambda: joined("aws_secret_", "access_key = ", random_text(16, 40)),
    "sendgrid": lambda: joined("S", "G.", random_text(17, 22), ".", random_text(18, 43)),
    "pypi": lambda: joined("pypi-", "AgEIcHlwaS5vcmc", random_text(19, 70)),
    "npm": lambda: joined("//registry.npmjs.org/", ":_authToken=", "npm_", random_text(20, 36)),
    "jwt": lambda: joined("ey", "JhbGciOiJIUzI1NiJ9.", "eyJzdWIiOiIxMjM0NTY3ODkwIn0.", random_text(21, 43)),
    "private-key": private_key_header,
    "basic-auth-url": lambda: joined("https://alice:", random_text(22, 16), "@example.com/v1"),
    "password-assignment": lambda: joined("pass", "word: ", random_text(23, 20)),
    "square": lambda: joined("sq0", "csp-", random_text(24, 43)),
    "json-escaped-openai": lambda: json_escaped(openai_key(25)),
    "json-escaped-slash-npm": lambda: joined("\\/\\/registry.npmjs.org\\/", ":_authToken=", "npm_", random_text(26, 36)),
}


def sharegpt_file(folder: Path, answer: str, *, raw_answer: bool = False) -> Path:
    """Three rows; the secret sits in the answer of the row on line 2."""
    rows = [{"conversations": [{"from": "human", "value": f"问题{n}"}, {"from": "gpt", "value": f"回答{n}"}]} for n in range(3)]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if raw_answer:  # already JSON text (escapes kept as written)
        lines[1] = lines[1].replace("回答1", answer)
    else:
        rows[1]["conversations"][1]["value"] = f"好的，{answer}"
        lines[1] = json.dumps(rows[1], ensure_ascii=False)
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def publish_dry_run(folder: Path, env: dict | None = None):
    (folder.parent / ".git").mkdir(exist_ok=True)
    return run_stylewrap("publish", "dataset", folder, "--repo", "alice/d", "--dry-run", cwd=folder.parent,
                         env={"MODELSCOPE_API_TOKEN": None, **(env or {})})


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_planted_secret_is_refused_with_its_line(tmp_path, kind):
    folder = tmp_path / "data"
    folder.mkdir()
    value = PLANTED[kind]()
    path = sharegpt_file(folder, value, raw_answer=kind.startswith("json-escaped"))
    done = publish_dry_run(folder)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path}:2: refusing to upload" in done.stderr
    assert value not in done.stderr and value not in done.stdout


def test_utf16_text_is_read_as_text(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    sharegpt_file(folder, "clean")
    notes = folder / "notes.txt"
    notes.write_bytes(("第一行\n" + f"key {openai_key(30)}\n").encode("utf-16"))
    done = publish_dry_run(folder)
    assert done.returncode == 2 and f"{notes}:2: refusing to upload" in done.stderr, done.stderr


@pytest.mark.parametrize("where", ["config", "manifest"])
def test_the_value_of_a_configured_key_variable_is_refused_whatever_its_name(tmp_path, where):
    folder = tmp_path / "data"
    folder.mkdir()
    value = random_text(31, 12, ALNUM)  # no key shape, and the variable's name says nothing about secrets
    sharegpt_file(folder, f"the teacher said {value}")
    if where == "config":
        (tmp_path / "stylewrap.yaml").write_text("datagen:\n  api_key_env: TEACHER_LOGIN\n", encoding="utf-8")
    else:  # `datagen --api-key-env TEACHER_LOGIN` recorded the name in the manifest beside the data
        (folder / "manifest.json").write_text(json.dumps({"settings": {"api_key_env": "TEACHER_LOGIN"}}), encoding="utf-8")
    done = publish_dry_run(folder, env={"TEACHER_LOGIN": value})
    assert done.returncode == 2 and "value of a secret environment variable" in done.stderr, done.stderr


def test_clean_real_data_passes(tmp_path, shared_data):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "dialogues.jsonl").symlink_to(shared_data / "tsldial" / "2_Dialogues.jsonl")
    (folder / "alpaca.json").symlink_to(shared_data / "llamafactory" / "alpaca_zh_demo.json")
    done = publish_dry_run(folder)
    assert done.returncode == 0, done.stderr
