"""`stylewrap app`: a small web chat page in front of an OpenAI-compatible endpoint.

Standard library only (the core install stays light; Gradio would add ~100 MB for one page). The
page (templates/web/chat.html) talks to this server, which proxies to the endpoint and passes the
streamed answer through as it arrives. Proxying keeps the API key on the server side, out of the
page, and avoids CORS (ms-swift's server sends no CORS headers). With two or more models served
(ms-swift serves base and tuned side by side) the page can ask both at once.

The page spends a key and a model, so it answers only its own user: the link printed at start-up
carries a random token, traded once for a SameSite=Strict, HttpOnly cookie that every API call
must bring; the Host header must name this server by address or `localhost` (a DNS-rebinding page
names its own domain); an Origin, when sent, must be this server; POSTs must be JSON (a
cross-origin page cannot send that without a preflight this server never answers).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import select
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from stylewrap.errors import InputError

MAX_BODY = 1 << 20
TOKEN_COOKIE = "stylewrap_app_token"
# a client that sends nothing for this long is dropped, so stalled connections do not pin threads
CLIENT_TIMEOUT_S = 30.0

log = logging.getLogger("stylewrap.app")


@dataclass
class Upstream:
    base_url: str
    api_key: str | None
    default_model: str | None = None
    timeout: float = 300.0
    roles: dict[str, str] = field(default_factory=dict)   # model -> "tuned" | "base", when known

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
    # set on the subclass made by make_server
    upstream: Upstream
    token: str
    bound_host: str
    server_version = "stylewrap-app"
    timeout = CLIENT_TIMEOUT_S

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        url = urllib.parse.urlsplit(self.path)
        if not self._host_allowed():
            return self._refuse("unexpected Host header")
        if url.path in ("/", "/index.html"):
            given = urllib.parse.parse_qs(url.query).get("token", [""])[0]
            if given and secrets.compare_digest(given.encode(), self.token.encode()):
                return self._grant_cookie()
            if not self._has_token():
                return self._refuse("open the link `stylewrap app` printed (it carries the page's token)")
            self._send(HTTPStatus.OK, page_html(), "text/html; charset=utf-8")
        elif url.path == "/api/models":
            if self._api_allowed():
                self._proxy_models()
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/api/chat":
            return self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        if not self._api_allowed():
            return None
        if self.headers.get_content_type() != "application/json":
            return self._refuse("expected Content-Type: application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return self._send_json(HTTPStatus.BAD_REQUEST, {"error": "body missing, too large or of no valid length"})
        try:
            body = json.loads(self.rfile.read(length))
            request = {"model": str(body["model"]), "messages": list(body["messages"]), "stream": True}
        except (ValueError, KeyError, TypeError):
            return self._send_json(HTTPStatus.BAD_REQUEST, {"error": "expected {model, messages}"})
        for key in ("max_tokens", "temperature"):
            if body.get(key) is not None:
                request[key] = body[key]
        self._proxy_stream(request)

    # ------------------------------------------------------------------ who may ask

    def _host_allowed(self) -> bool:
        """The Host header names this server as an address, `localhost` or the --host it was given."""
        host = urllib.parse.urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
        if host in ("localhost", self.bound_host.lower()):
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True

    def _has_token(self) -> bool:
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE and secrets.compare_digest(value.encode(), self.token.encode()):
                return True
        return False

    def _api_allowed(self) -> bool:
        origin = self.headers.get("Origin")
        if not self._host_allowed():
            self._refuse("unexpected Host header")
        elif origin is not None and origin != f"http://{self.headers.get('Host', '')}":
            self._refuse(f"cross-origin request from {origin!r} refused")
        elif not self._has_token():
            self._refuse("missing or wrong page token: open the link `stylewrap app` printed")
        else:
            return True
        return False

    def _grant_cookie(self) -> None:
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Set-Cookie", f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Location", "/")  # the token leaves the address bar and the history
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _refuse(self, why: str, status: HTTPStatus = HTTPStatus.FORBIDDEN) -> None:
        self._send_json(status, {"error": why})

    def _proxy_models(self) -> None:
        try:
            with urllib.request.urlopen(self.upstream.request("/models"), timeout=30) as response:
                ids = [m["id"] for m in json.loads(response.read()).get("data", [])]
        except urllib.error.HTTPError as exc:
            return self._send_json(HTTPStatus.BAD_GATEWAY, {
                "error": f"the model server at {self.upstream.base_url} answered HTTP {exc.code} when asked for its models",
                "hint": "check its key (--api-key-env) and `stylewrap deploy logs`"})
        except (urllib.error.URLError, OSError, ValueError):
            return self._send_json(HTTPStatus.BAD_GATEWAY, {
                "error": f"cannot reach the model server at {self.upstream.base_url}",
                "hint": "is it running? `stylewrap deploy status`; start one with `stylewrap deploy --detach`"})
        default = self.upstream.default_model if self.upstream.default_model in ids else (ids[0] if ids else None)
        # the default (the tuned model) first: side by side shows it on the left
        ordered = sorted(ids, key=lambda model_id: model_id != default)
        self._send_json(HTTPStatus.OK, {"models": ordered, "default": default, "endpoint": self.upstream.base_url,
                                        "roles": {m: r for m, r in self.upstream.roles.items() if m in ids}})

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
            watch = ClientWatch(self.connection, response)
            try:
                # line by line, so each server-sent event reaches the page the moment it is produced
                for line in response:
                    self.wfile.write(line)
                    self.wfile.flush()
            except OSError:
                pass  # the page went away mid-answer (its connection broke, or the watch shut the upstream one)
            finally:
                watch.finish()

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: HTTPStatus, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")


class ClientWatch:
    """Shuts the upstream connection the moment the page closes its own (Stop), instead of at the next
    piece the server sends: a model server sees its client leave only when that connection closes, and
    one that is silent for a while (ms-swift answering another request first) would otherwise
    generate the whole answer for nobody."""

    def __init__(self, client: socket.socket, response) -> None:
        self.client = client
        self.response = response
        self.lock = threading.Lock()   # the upstream socket is shut only while the response is open
        self.answered = False
        threading.Thread(target=self._watch, daemon=True).start()

    def finish(self) -> None:
        """The answer ended (or the page left): stop watching before the response is closed."""
        with self.lock:
            self.answered = True

    def _watch(self) -> None:
        while not self.answered:
            try:
                readable, _, _ = select.select([self.client], [], [], 0.2)
                if not readable:
                    continue
                if self.client.recv(1, socket.MSG_PEEK):
                    return   # the page sent something (it does not, mid-answer): nothing to watch for
            except (OSError, ValueError):
                pass  # reset or closed: gone as well
            with self.lock:
                if not self.answered:
                    self._shut_upstream()
            return

    def _shut_upstream(self) -> None:
        # a duplicate of the socket's descriptor: shutting it down ends the connection the reading thread uses
        with socket.socket(fileno=os.dup(self.response.fileno())) as upstream:
            try:
                upstream.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """One line instead of socketserver's traceback; a client that went away is no error at all."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            log.warning("app: a request from %s failed: %s: %s", client_address[0], type(error).__name__, error)


def make_server(upstream: Upstream, host: str = "127.0.0.1", port: int = 7860, *, token: str | None = None) -> ThreadingHTTPServer:
    handler = type("BoundChatHandler", (ChatHandler,), {
        "upstream": upstream, "token": token or secrets.token_urlsafe(24), "bound_host": host})
    try:
        httpd = AppServer((host, port), handler)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})", hint="choose another --port") from None
    return httpd


def run_app(base_url: str | None, model: str | None, api_key_env: str | None, host: str, port: int, *,
            choose=None, on_ready=None) -> None:
    """Serve the page for an endpoint (default: the running stylewrap server) until Ctrl-C."""
    from stylewrap.serve.chat import resolve_endpoint

    endpoint = resolve_endpoint(base_url, model, api_key_env, choose=choose)
    serve(Upstream(endpoint.base_url, endpoint.api_key, endpoint.model, roles=endpoint.roles), host, port,
          on_ready=on_ready)


def serve(upstream: Upstream, host: str, port: int, *, on_ready=None) -> None:
    from stylewrap.serve.servers import warn_if_exposed

    httpd = make_server(upstream, host, port)
    warn_if_exposed(host, "the page", "only the link with its token lets one in, and it spends the endpoint's key")
    if on_ready:
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{httpd.server_address[1]}/?token={httpd.RequestHandlerClass.token}")
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
