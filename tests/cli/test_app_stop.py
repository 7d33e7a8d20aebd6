"""Stop on the web page ends the answer at the model server too: the page closes its request, and
`stylewrap app` (the installed console script) closes its request to the server at once, even while
the server is silent (a real local OpenAI-compatible server, tests/fakeopenai.py, that notices
its client leaving mid-answer and logs how far it got)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from test_app_chat_security import KEY_ENV, App, env, fake  # noqa: F401 - the fixtures used here


@pytest.fixture
def app(fake, env, tmp_path):  # noqa: F811
    running = App(fake, env, tmp_path, "--api-key-env", KEY_ENV)
    yield running
    running.stop()


def wait_for(condition, limit_s: float = 20.0):
    """Poll until `condition()` is truthy; its last value either way (never asserts on time)."""
    deadline = time.monotonic() + limit_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_stop_closes_the_model_servers_request_while_it_is_silent(app, fake):
    # the server sends its first word, then says nothing for 20 s: the proxy must not wait for the
    # next word to notice the page has gone
    fake.script(models=["teacher-1"], reply="one two three four", faults=[{"kind": "stall"}], slow_seconds=20)
    body = json.dumps({"model": "teacher-1", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as page:
        page.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     + f"Cookie: {app.cookie()}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        received = b""
        while b"one" not in received:                 # the first word arrived; the server is now silent
            piece = page.recv(4096)
            assert piece, received
            received += piece
        assert received.startswith(b"HTTP/1.0 200")
    # the page's connection is closed now: what its Stop does to its fetch
    entry = wait_for(lambda: next((e for e in fake.log() if "client_left_after" in e), None))
    assert entry is not None, f"the model server never saw its client leave: {fake.log()}"
    # it left during the silence: the server sent nothing after the first word
    assert entry["client_left_after"] == 1 and entry["pieces_sent"] == 1, entry


def test_an_answer_read_to_the_end_is_whole(app, fake):
    fake.script(models=["teacher-1"], reply="one two three four", stream_interval=0.05)
    status, _, body = app.request("POST", "/api/chat", json.dumps(
        {"model": "teacher-1", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        {"Cookie": app.cookie(), "Content-Type": "application/json"})
    assert status == 200 and body.rstrip().endswith(b"data: [DONE]")
    words = [json.loads(line[6:])["choices"][0]["delta"].get("content") for line in body.splitlines()
             if line.startswith(b"data: {")]
    assert "".join(w or "" for w in words) == "one two three four"
    assert "client_left_after" not in fake.log()[-1]
