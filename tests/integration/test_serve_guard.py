"""backends/serve_launcher.py in front of a real FastAPI app under uvicorn, inside the real
llamafactory environment: the app is set up the way llamafactory's API server is
(`CORSMiddleware(allow_origins=["*"], allow_credentials=True)`, llamafactory/api/app.py), with no
model behind it, so the guard's key, model and CORS rules are checked in seconds."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from pathlib import Path

import pytest

from fakeopenai import free_port
from stylewrap.backends.envs import env_python

pytestmark = pytest.mark.integration

KEY_ENV = "STYLEWRAP_TEST_GUARD_KEY"
KEY = "guard-test-key-123"
SERVED = "default-lora"

STAND_IN = '''
import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

app = FastAPI()
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"], allow_headers=["*"])


@app.get("/v1/models")
async def models():
    return {"object": "list", "data": [{"id": "gpt-3.5-turbo", "object": "model"}]}


@app.post("/v1/chat/completions")
async def chat(request: Request):
    body = await request.json()
    return {"object": "chat.completion", "model": body.get("model"), "choices": []}


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=8000)
'''


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    python = env_python("llamafactory")
    if python is None or not python.exists():
        pytest.fail("the llamafactory environment is missing: stylewrap backend install llamafactory")
    folder = tmp_path_factory.mktemp("stand-in")
    (folder / "lf_like_server.py").write_text(STAND_IN, encoding="utf-8")
    port = free_port()
    spec = {"module": "lf_like_server", "argv": [], "host": "127.0.0.1", "port": port, "served_models": [SERVED],
            "api_key_env": KEY_ENV}
    launcher = Path(__file__).resolve().parents[2] / "backends" / "serve_launcher.py"
    process = subprocess.Popen([str(python), str(launcher), json.dumps(spec)], env={"PYTHONPATH": str(folder), KEY_ENV: KEY,
                               "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(process.stdout.read())
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def call(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_no_page_of_another_origin_may_read_the_replies(guarded):
    page = {"Origin": "http://evil.example", "Authorization": f"Bearer {KEY}"}
    status, headers, _ = call(guarded, "GET", "/v1/models", headers=page)
    assert status == 200 and not [h for h in headers if h.startswith("access-control-allow-")], headers
    status, headers, _ = call(guarded, "OPTIONS", "/v1/chat/completions", headers={
        **page, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
    assert not [h for h in headers if h.startswith("access-control-allow-")], headers


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(guarded, scheme):
    status, _, body = call(guarded, "POST", "/v1/chat/completions", {"model": SERVED, "messages": []},
                           {"Authorization": f"{scheme} {KEY}"})
    assert status == 200 and json.loads(body)["model"] == SERVED


def test_a_wrong_key_is_refused(guarded):
    assert call(guarded, "GET", "/v1/models", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert call(guarded, "GET", "/v1/models")[0] == 401


@pytest.mark.parametrize("path", ["/v1/chat/completions/", "//v1/chat/completions", "/v1//chat/completions"])
def test_the_served_model_check_holds_on_every_spelling_of_the_path(guarded, path):
    status, _, body = call(guarded, "POST", path, {"model": "someone-elses-model", "messages": []},
                           {"Authorization": f"Bearer {KEY}"})
    assert status == 404 and b"model_not_found" in body
