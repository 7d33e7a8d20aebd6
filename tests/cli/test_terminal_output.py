"""What stylewrap prints about hostile input reaches a real terminal (a pseudo-terminal: Click
strips escape sequences only when stderr is not one) without the input's control sequences, and
without a key carried in a URL."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess

import pytest

from console import STYLEWRAP, environment
from fakekeys import openai_key


def run_on_a_terminal(*args, cwd, env=None) -> tuple[int, bytes]:
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(STYLEWRAP), *map(str, args)], cwd=cwd, env=environment(env), stdin=follower,
                               stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            pytest.fail("no output within 60 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=30), output


ESC = "\x1b"
# the row, and the sequences from it that must not reach the terminal raw (the progress bar's own
# colours may: they are stylewrap's, not the data's)
HOSTILE_ROWS = {
    "column-name": ({f"{ESC}]0;pwned{chr(7)}{ESC}[2Jfoo": 1}, [b"\x1b]0;pwned", b"\x07", b"\x1b[2J"]),
    "role": ({"conversations": [{"from": f"{ESC}[31mhuman", "value": "a"}, {"from": "gpt", "value": "b"}]}, [b"\x1b[31mhuman"]),
    "c1-control": ({"\u009b2Jbar": 1}, ["\u009b2J".encode()]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ROWS))
def test_data_errors_never_send_control_sequences_to_the_terminal(tmp_path, case):
    (tmp_path / ".git").mkdir()
    source = tmp_path / "rows.jsonl"
    row, raw_sequences = HOSTILE_ROWS[case]
    source.write_text(json.dumps(row) + "\n", encoding="utf-8")
    code, output = run_on_a_terminal("data", "validate", source, cwd=tmp_path)
    assert code == 2, output
    assert b"rows.jsonl:1" in output
    for sequence in raw_sequences:
        assert sequence not in output, output


def test_a_key_in_the_endpoint_url_is_refused_and_never_shown(tmp_path):
    (tmp_path / ".git").mkdir()
    key = openai_key(77)
    code, output = run_on_a_terminal("datagen", "topics", "--base-url", f"http://user:{key}@127.0.0.1:9/v1", "-o", "out",
                                     cwd=tmp_path, env={"OPENAI_API_KEY": "x", "HOME": str(tmp_path)})
    assert code == 2 and b"carries credentials" in output and b"http://***@127.0.0.1:9/v1" in output, output
    assert key.encode() not in output
    assert not (tmp_path / "out").exists()
