"""`stylewrap app`: a small web chat page in front of an OpenAI-compatible endpoint.

Standard library only (the core install stays light; Gradio would add ~100 MB for one page). The
page (templates/web/chat.html) talks to this server, which proxies to the endpoint and passes the
streamed answer through as it arrives. Proxying keeps the API key on the server side, out of the
page, and avoids CORS (ms-swift's server sends no CORS headers). With two or more models served
(ms-swift serves base and tuned side by side) the page can ask both at once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from stylewrap.errors import InputError

MAX_BODY = 1 << 20


@dataclass
class Upstream:
    base_url: str
    api_key: str | None
    default_model: str | None = None
    timeout: float = 300.0

    def request(self, path: str, body: dict | None = None) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url.rstrip('/')}{path}", data=data, method="POST" if data else "GET")
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        return req


def page_html() -> bytes:
    return resources.files("stylewrap.templates").joinpath("web/chat.html").read_bytes()


class ChatHandler(BaseHTTPRequestHandler):
    upstream: Upstream  # set on the subclass made by make_server
    server_version = "stylewrap-app"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, page_html(), "text/html; charset=utf-8")
        elif self.path == "/api/models":
            self._proxy_models()
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/api/chat":
            return self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._send_json(HTTPStatus.BAD_REQUEST, {"error": "body missing or too large"})
        try:
            body = json.loads(self.rfile.read(length))
            request = {"model": str(body["model"]), "messages": list(body["messages"]), "stream": True}
        except (ValueError, KeyError, TypeError):
            return self._send_json(HTTPStatus.BAD_REQUEST, {"error": "expected {model, messages}"})
        for key in ("max_tokens", "temperature"):
            if body.get(key) is not None:
                request[key] = body[key]
        self._proxy_stream(request)

    def _proxy_models(self) -> None:
        try:
            with urllib.request.urlopen(self.upstream.request("/models"), timeout=30) as response:
                ids = [m["id"] for m in json.loads(response.read()).get("data", [])]
        except urllib.error.HTTPError as exc:
            return self._send_json(HTTPStatus.BAD_GATEWAY, {"error": f"upstream HTTP {exc.code}"})
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return self._send_json(HTTPStatus.BAD_GATEWAY, {"error": f"upstream unreachable: {exc}"})
        default = self.upstream.default_model if self.upstream.default_model in ids else (ids[0] if ids else None)
        # the default (the tuned model) first: side by side shows it on the left
        ordered = sorted(ids, key=lambda model_id: model_id != default)
        self._send_json(HTTPStatus.OK, {"models": ordered, "default": default})

    def _proxy_stream(self, request: dict) -> None:
        try:
            response = urllib.request.urlopen(self.upstream.request("/chat/completions", request), timeout=self.upstream.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            return self._send_json(HTTPStatus.BAD_GATEWAY, {"error": f"upstream HTTP {exc.code}: {detail}"})
        except (urllib.error.URLError, OSError) as exc:
            return self._send_json(HTTPStatus.BAD_GATEWAY, {"error": f"upstream unreachable: {exc}"})
        with response:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                # line by line, so each server-sent event reaches the page the moment it is produced
                for line in response:
                    self.wfile.write(line)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away mid-answer; closing the upstream response stops generation

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: HTTPStatus, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")


def make_server(upstream: Upstream, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    handler = type("BoundChatHandler", (ChatHandler,), {"upstream": upstream})
    try:
        httpd = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})", hint="choose another --port") from None
    httpd.daemon_threads = True
    return httpd


def run_app(base_url: str | None, model: str | None, api_key_env: str | None, host: str, port: int, *, on_ready=None) -> None:
    """Serve the page for an endpoint (default: the running stylewrap server) until Ctrl-C."""
    from stylewrap.serve.chat import resolve_endpoint

    endpoint = resolve_endpoint(base_url, model, api_key_env)
    serve(Upstream(endpoint.base_url, endpoint.api_key, endpoint.model), host, port, on_ready=on_ready)


def serve(upstream: Upstream, host: str, port: int, *, on_ready=None) -> None:
    httpd = make_server(upstream, host, port)
    if on_ready:
        on_ready(f"http://{host}:{httpd.server_address[1]}/")
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
