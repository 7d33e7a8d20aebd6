"""Runs a backend's own OpenAI-compatible server, inside that backend's environment.

Executed by the backend env's python through `stylewrap.runner.script_invocation` (stylewrap
itself is not installed there, and this file's folder is not put on sys.path), with one
JSON argument: {"module", "argv", "host", "port", "served_models", "api_key_env"}. It runs the
backend's server module as `__main__` (no launcher process in between: ms-swift's `swift` launcher
leaves its uvicorn child serving when killed) and hooks `uvicorn.run`, which both backends call, to:

- bind exactly host:port (ms-swift silently moves to the next free port, llamafactory binds 0.0.0.0);
  a busy port fails loudly instead;
- answer 401 when an API key is required and missing or wrong (ms-swift answers 400, llamafactory 401
  but only through its own env var), so the key never appears on a command line;
- answer 404 for a model name that is not served (llamafactory answers any name with its one model);
- name every reply, plain or streamed, after the model asked for (ms-swift names an adapter's
  replies after the base model).
- drop every `Access-Control-Allow-*` response header (llamafactory allows any origin *with
  credentials*, so any web page could use a model served on localhost): only same-origin pages and
  non-browser clients can read replies;
- stop generating once no client is waiting for an answer. Neither backend's transformers engine
  does: both run `model.generate` in a thread of their own that feeds a queue, and a client that
  leaves (the web page's Stop) only stops the queue being read, so the model went on to max_tokens,
  holding the CPU/GPU and, on ms-swift, whose one worker answers requests in turn, the next
  question. A stopping criterion added to every `generate` call ends it when the count of model
  requests still open is zero. It cannot tell apart which request a generation serves (ms-swift
  batches several into one), so an abandoned answer runs on while another request is open.
- keep attention off PyTorch's cuDNN kernel on a GPU (`attention_without_cudnn`: its plans are cached
  per thread, and both backends generate each answer in a thread of its own).

Only the standard library and what uvicorn needs are imported here.
"""

import json
import os
import runpy
import secrets
import sys
import threading

PUBLIC_PATHS = frozenset({"/health", "/ping"})
MODEL_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})


async def _send_json(send, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class OpenRequests:
    """How many model requests are still being answered to a client that is still there."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def opened(self) -> None:
        with self.lock:
            self.count += 1

    def closed(self) -> None:
        with self.lock:
            self.count -= 1

    def none_open(self) -> bool:
        return self.count == 0


OPEN_REQUESTS = OpenRequests()


def watch_disconnect(receive, on_gone):
    """A `receive` that calls `on_gone` when the client disconnects."""
    async def receive_watched():
        message = await receive()
        if message["type"] == "http.disconnect":
            on_gone()
        return message

    return receive_watched


class Guard:
    """ASGI middleware: bearer-key check and served-model check in front of the backend's app."""

    def __init__(self, app, api_key: str | None, served_models: list[str]):
        self.app = app
        self.api_key = api_key
        self.served_models = served_models

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = without_cors(send)
        path = normalized_path(scope.get("path", ""))
        if self.api_key and path not in PUBLIC_PATHS:
            headers = dict(scope.get("headers") or [])
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""  # the scheme is case-insensitive (RFC 9110)
            if not secrets.compare_digest(token.encode(), self.api_key.encode()):
                return await _send_json(send, 401, "Invalid or missing API key.", "invalid_api_key")
        if scope.get("method") == "POST" and path in MODEL_PATHS:
            body, receive = await _buffer_body(receive)
            try:
                model = json.loads(body or b"{}").get("model")
            except (ValueError, AttributeError):
                model = None
            if model is not None and model not in self.served_models:
                return await _send_json(
                    send, 404, f"The model `{model}` does not exist; served: {', '.join(self.served_models)}.",
                    "model_not_found")
            if model is not None:
                send = ReplyNamer(send, model)
            return await self._answer_while_open(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _answer_while_open(self, scope, receive, send):
        """Count the request open until its client leaves or its answer ends, whichever comes first."""
        open_ = [True]

        def close_once():
            if open_[0]:
                open_[0] = False
                OPEN_REQUESTS.closed()

        OPEN_REQUESTS.opened()
        try:
            return await self.app(scope, watch_disconnect(receive, close_once), send)
        finally:
            close_once()


def normalized_path(path: str) -> str:
    """`/v1//chat/completions/` as the routers read it: `/v1/chat/completions`."""
    return "/" + "/".join(part for part in path.split("/") if part)


def without_cors(send):
    """An ASGI `send` that drops the CORS grants from every response."""
    async def send_without_cors(message):
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers") or [] if not k.lower().startswith(b"access-control-allow-")]
            message = {**message, "headers": headers}
        return await send(message)

    return send_without_cors


class ReplyNamer:
    """An ASGI `send` that sets `model` to one name in a JSON reply (held back whole, its length
    recomputed) and in each `data:` line of an event stream (passed on line by line)."""

    def __init__(self, send, model: str):
        self.send = send
        self.model = model
        self.mode = None          # "json", "stream" or None (passed through untouched)
        self.start = None
        self.held = b""

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers") or [])
            content_type = headers.get(b"content-type", b"")
            if b"content-encoding" not in headers:
                if content_type.startswith(b"application/json"):
                    self.mode, self.start = "json", message
                    return None
                if content_type.startswith(b"text/event-stream"):
                    self.mode = "stream"
            return await self.send(message)
        if message["type"] != "http.response.body" or self.mode is None:
            return await self.send(message)
        self.held += message.get("body", b"")
        more = message.get("more_body", False)
        if self.mode == "json":
            if more:
                return None
            body = self._renamed(self.held)
            headers = [(k, v) for k, v in self.start.get("headers") or [] if k != b"content-length"]
            await self.send({**self.start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            return await self.send({**message, "body": body})
        cut = self.held.rfind(b"\n") + 1 if more else len(self.held)   # whole lines only, until the end
        ready, self.held = self.held[:cut], self.held[cut:]
        body = b"\n".join(self._renamed_event_line(line) for line in ready.split(b"\n"))
        return await self.send({**message, "body": body})

    def _renamed(self, data: bytes) -> bytes:
        try:
            reply = json.loads(data)
        except ValueError:
            return data
        if not isinstance(reply, dict) or "model" not in reply or reply["model"] == self.model:
            return data
        return json.dumps({**reply, "model": self.model}, ensure_ascii=False).encode()

    def _renamed_event_line(self, line: bytes) -> bytes:
        if not line.startswith(b"data:"):
            return line
        end = b"\r" if line.endswith(b"\r") else b""
        payload = line[len(b"data:"):len(line) - len(end)].lstrip(b" ")
        renamed = self._renamed(payload)
        return line if renamed is payload else b"data: " + renamed + end


async def _buffer_body(receive):
    """Read the whole request body, and return it with a `receive` that replays it once."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def stop_generating_when_nobody_waits() -> None:
    """Add a stopping criterion to every `generate` call: stop once no model request is open."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.utils import GenerationMixin

    class NobodyWaits(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), OPEN_REQUESTS.none_open(), dtype=torch.bool, device=input_ids.device)

    real_generate = GenerationMixin.generate

    def generate(self, *args, stopping_criteria=None, **kwargs):
        criteria = StoppingCriteriaList([*(stopping_criteria or []), NobodyWaits()])
        return real_generate(self, *args, stopping_criteria=criteria, **kwargs)

    GenerationMixin.generate = generate


def attention_without_cudnn() -> None:
    """Keep PyTorch's SDPA off its cuDNN kernel on a GPU. Both backends generate each answer in a new
    thread, and PyTorch caches cuDNN attention's execution plans per thread (aten's MHA.cpp:
    `thread_local` graph caches), so every step of every answer, a new key length each, built a
    plan again: on an H200 a 7B generated 2.4x slower in a fresh thread than in the main one (92
    against 39 ms a token, bench/gpu/stream_diag.py). SDPA's flash and memory-efficient kernels keep
    no such cache. STYLEWRAP_CUDNN_SDPA=1 leaves it on (what the benchmark compares with)."""
    if os.environ.get("STYLEWRAP_CUDNN_SDPA") == "1":
        return
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.enable_cudnn_sdp(False)


def main() -> None:
    spec = json.loads(sys.argv[1])
    api_key = os.environ.get(spec["api_key_env"]) if spec.get("api_key_env") else None

    import uvicorn

    real_run = uvicorn.run

    def guarded_run(app, *args, **kwargs):
        kwargs.update(host=spec["host"], port=spec["port"])
        print(f"[stylewrap] serving {spec['served_models']} on http://{spec['host']}:{spec['port']}/v1", flush=True)
        return real_run(Guard(app, api_key, spec["served_models"]), *args, **kwargs)

    uvicorn.run = guarded_run
    stop_generating_when_nobody_waits()
    attention_without_cudnn()
    sys.argv = [spec["module"], *spec["argv"]]
    runpy.run_module(spec["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
