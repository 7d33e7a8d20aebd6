"""Whom `stylewrap chat` and `stylewrap app` hand a key, and whom the app answers: the console
script against a real local OpenAI-compatible server (tests/fakeopenai.py) that records every
Authorization header it receives, and raw HTTP against the app the script started."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
from pathlib import Path

import pytest

from console import run_stylewrap, start_stylewrap
from fakeopenai import FakeServer
from fakekeys import openai_key

TEACHER_KEY = "test-key"  # the fake server's key, held in the variable named for it
KEY_ENV = "STYLEWRAP_TEST_ENDPOINT_KEY"


@pytest.fixture(scope="module")
def fake():
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The user's $OPENAI_API_KEY (their paid teacher key) set, no stylewrap server recorded."""
    return {"OPENAI_API_KEY": openai_key(41), KEY_ENV: TEACHER_KEY, "STYLEWRAP_STATE_DIR": str(tmp_path / "servers"),
            "HOME": str(tmp_path)}


def test_chat_never_sends_the_openai_key_to_an_endpoint_it_was_not_named_for(fake, env, tmp_path):
    fake.script(reply="hello")
    done = run_stylewrap("chat", "--base-url", fake.base_url, "--model", "teacher-1", cwd=tmp_path, env=env,
                         input="hi\n/exit\n")
    assert done.returncode == 0, done.stderr
    seen = fake.authorizations()
    assert seen and all(openai_key(41) not in (header or "") for header in seen), seen


def test_chat_sends_the_key_of_the_variable_named_with_the_endpoint(fake, env, tmp_path):
    fake.script(reply="hello")
    done = run_stylewrap("chat", "--base-url", fake.base_url, "--model", "teacher-1", "--api-key-env", KEY_ENV,
                         cwd=tmp_path, env=env, input="hi\n/exit\n")
    assert done.returncode == 0 and "hello" in done.stdout, done.stdout + done.stderr
    assert fake.authorizations() == [f"Bearer {TEACHER_KEY}"]


# ------------------------------------------------------------------ the app


class App:
    """`stylewrap app` running as its own process; `url` is the link it printed."""

    def __init__(self, fake: FakeServer, env: dict[str, str], cwd: Path, *extra: str):
        self.process = start_stylewrap("app", "--base-url", fake.base_url, "--port", "0", *extra, cwd=cwd, env=env)
        line = self.process.stdout.readline()
        assert line.startswith("chat page on http://"), line + self.process.stderr.read()
        self.url = line.split()[3]
        address = self.url.split("//")[1].split("/")[0]
        self.port = int(address.rsplit(":", 1)[1])
        self.token = self.url.split("token=")[1]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def cookie(self) -> str:
        status, headers, _ = self.request("GET", f"/?token={self.token}")
        assert status == 303, status
        return headers["Set-Cookie"].split(";")[0]

    def stop(self) -> str:
        """Ctrl-C it (once) and return what it wrote on stderr."""
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGINT)
            self.process.wait(timeout=30)
            self.stderr = self.process.stderr.read()
            self.process.stdout.close()
            self.process.stderr.close()
        return self.stderr


@pytest.fixture
def app(fake, env, tmp_path):
    fake.script(reply="hello there")
    running = App(fake, env, tmp_path, "--api-key-env", KEY_ENV)
    yield running
    running.stop()


CHAT = json.dumps({"model": "teacher-1", "messages": [{"role": "user", "content": "hi"}]}).encode()


def test_app_sends_no_key_it_was_not_named_for_at_start_up(fake, env, tmp_path):
    fake.script()
    done = run_stylewrap("app", "--base-url", fake.base_url, "--port", "0", cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 1 and "HTTP 401" in done.stderr  # it asked for the models without a key
    seen = fake.authorizations()
    assert seen and all(openai_key(41) not in (header or "") for header in seen), seen


def test_app_sends_no_key_it_was_not_named_for_on_page_loads(fake, env, tmp_path):
    fake.script()
    app = App(fake, env, tmp_path, "--model", "teacher-1")
    try:
        status, _, body = app.request("GET", "/api/models", headers={"Cookie": app.cookie()})
        assert status == 502 and b"answered HTTP 401" in body  # the endpoint wanted a key; none was sent
    finally:
        app.stop()
    seen = fake.authorizations()
    assert seen and all(openai_key(41) not in (header or "") for header in seen), seen


def test_the_page_and_its_api_need_the_printed_token(app):
    assert app.request("GET", "/")[0] == 403
    assert app.request("GET", "/api/models")[0] == 403
    assert app.request("GET", "/?token=wrong")[0] == 403
    cookie = app.cookie()
    assert "HttpOnly" in app.request("GET", f"/?token={app.token}")[1]["Set-Cookie"]
    assert "SameSite=Strict" in app.request("GET", f"/?token={app.token}")[1]["Set-Cookie"]
    status, _, page = app.request("GET", "/", headers={"Cookie": cookie})
    assert status == 200 and b"<html" in page.lower()
    status, _, body = app.request("GET", "/api/models", headers={"Cookie": cookie})
    assert status == 200 and json.loads(body)["models"] == ["teacher-1"]
    status, _, body = app.request("POST", "/api/chat", CHAT, {"Cookie": cookie, "Content-Type": "application/json"})
    assert status == 200 and b"hello" in body


def test_a_cross_origin_post_is_refused_before_it_reaches_the_endpoint(app, fake):
    cookie = app.cookie()
    fake.script(reply="hello")
    status, _, _ = app.request("POST", "/api/chat", CHAT, {"Cookie": cookie, "Content-Type": "text/plain",
                                                             "Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = app.request("POST", "/api/chat", CHAT, {"Cookie": cookie, "Content-Type": "text/plain"})
    assert status == 415
    assert fake.log() == []


def test_a_rebinding_host_header_is_refused(app, fake):
    cookie = app.cookie()
    fake.script(reply="hello")
    for path in ("/", "/api/models"):
        assert app.request("GET", path, headers={"Cookie": cookie, "Host": f"rebind.evil.example:{app.port}"})[0] == 403
    status, _, _ = app.request("POST", "/api/chat", CHAT, {"Cookie": cookie, "Content-Type": "application/json",
                                                             "Host": "rebind.evil.example"})
    assert status == 403 and fake.log() == []


def test_a_bad_content_length_is_a_400_and_the_app_keeps_serving(app):
    cookie = app.cookie()
    headers = {"Cookie": cookie, "Content-Type": "application/json"}
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as sock:
        sock.sendall(f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\nCookie: {cookie}\r\n"
                     "Content-Type: application/json\r\nContent-Length: abc\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.0 400")
    assert app.request("POST", "/api/chat", CHAT, headers)[0] == 200
    stderr = app.stop()
    assert "Traceback" not in stderr, stderr


def test_a_silent_client_is_dropped_instead_of_holding_a_thread():
    from stylewrap.serve.webapp import Upstream, make_server

    httpd = make_server(Upstream("http://127.0.0.1:9/v1", None), "127.0.0.1", 0)
    httpd.RequestHandlerClass.timeout = 0.2
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=30) as sock:
            assert sock.recv(100) == b""  # closed by the server, not left open until the client gives up
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_listening_on_every_interface_warns(fake, env, tmp_path):
    fake.script()
    app = App(fake, env, tmp_path, "--host", "0.0.0.0", "--model", "teacher-1")
    stderr = app.stop()
    assert "warning: the page listens on 0.0.0.0" in stderr


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("127.0.0.1", False)])
def test_deploy_on_every_interface_warns(tmp_path, host, warned):
    (tmp_path / ".git").mkdir()  # no config from above
    done = run_stylewrap("deploy", "--dry-run", "--host", host, "--model", tmp_path, cwd=tmp_path,
                         env={"STYLEWRAP_STATE_DIR": str(tmp_path / "servers")})
    assert done.returncode == 0, done.stderr
    assert ("warning: the server listens on 0.0.0.0" in done.stderr) == warned
    assert "warning" not in done.stdout
