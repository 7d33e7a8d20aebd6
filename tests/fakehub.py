"""A local ModelScope hub for tests: the HTTP calls the real `modelscope` SDK makes to publish.

Implements, as the SDK (modelscope 1.40 / modelscope_hub) sends them:
  POST /api/v1/login                                  token -> git token, user
  GET  /openapi/v1/users/me                           whoami
  GET  /openapi/v1/{models|datasets}/{owner}/{name}   repo lookup (OpenAPI envelope)
  GET  /api/v1/{models|datasets}/{owner}/{name}       repo lookup fallback (legacy envelope)
  POST /api/v1/models (JSON), /api/v1/datasets (multipart)              create repo
  POST /api/v1/repos/{type}s/{owner}/{name}/info/lfs/objects/batch      LFS batch
  PUT  /lfs/{sha256}                                  blob upload (the presigned URL we hand out)
  POST /api/v1/repos/{type}s/{owner}/{name}/commit/{revision}           commit
Everything else answers 501, a body it cannot read answers 400, and both are recorded in
`unexpected`, which the fixture asserts is empty: a call this server does not understand fails
the test instead of passing silently.

Every request is recorded (method, path, headers, body, the status answered).
`fail(method, path_regex, status, times)` injects failures; with `after_handling=True` the call is
carried out first and then answered with the error (a create that went through, reported as failed).
Binds 127.0.0.1 on a free port, runs in a thread, `stop()` shuts it down.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PRIVATE, PUBLIC = 1, 5
MODEL_EXISTS_CODE = 10010101001
DATASET_EXISTS_CODE = 10020101001
BAD_TOKEN_CODE = 10010103009


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None   # what this server answered


@dataclass
class Repo:
    repo_type: str
    owner: str
    name: str
    visibility: int
    license: str
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)

    def payload(self) -> dict:
        return {"id": f"{self.owner}/{self.name}", "owner": self.owner, "name": self.name,
                "private": self.visibility == PRIVATE, "license": self.license}


@dataclass
class Failure:
    method: str
    pattern: re.Pattern
    status: int
    times: int
    after_handling: bool


class FakeHub:
    def __init__(self, *, token: str, username: str = "alice", orgs: tuple[str, ...] = ()):
        self.token = token
        self.username = username
        self.writable_owners = {username, *orgs}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.unexpected: list[str] = []
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                hub._handle(self)

            def do_POST(self):
                hub._handle(self)

            def do_PUT(self):
                hub._handle(self)

            def do_DELETE(self):
                hub._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # ------------------------------------------------------------ test controls

    def fail(self, method: str, path_regex: str, status: int = 500, times: int = 1, *,
             after_handling: bool = False) -> None:
        self.failures.append(Failure(method, re.compile(path_regex), status, times, after_handling))

    def add_repo(self, repo_type: str, repo_id: str, visibility: int = PUBLIC) -> Repo:
        owner, name = repo_id.split("/")
        repo = self.repos[(repo_type, repo_id)] = Repo(repo_type, owner, name, visibility, "apache-2.0")
        return repo

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        return self.repos[(repo_type, repo_id)]

    def sent_bytes(self) -> bytes:
        """Everything clients sent except credentials headers: bodies and the other headers."""
        out = []
        for request in self.requests:
            out.append(request.body)
            out.extend(f"{k}: {v}".encode() for k, v in request.headers.items()
                       if k.lower() not in ("authorization", "cookie"))
        return b"\n".join(out)

    def calls(self, method: str, path_regex: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    # ------------------------------------------------------------ dispatch

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        request = Request(handler.command, path, dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(request)
            injected = self._injected(request)
        if injected is not None and not injected.after_handling:
            return self._reply_injected(handler, request, injected)
        routes = (
            ("POST", r"^/api/v1/login$", self._login),
            ("GET", r"^/openapi/v1/users/me$", self._me),
            ("GET", r"^/openapi/v1/(models|datasets)/([^/]+)/([^/]+)$", self._get_repo_openapi),
            ("GET", r"^/api/v1/(models|datasets)/([^/]+)/([^/]+)$", self._get_repo_legacy),
            ("POST", r"^/api/v1/(models|datasets)$", self._create_repo),
            ("POST", r"^/api/v1/repos/(models|datasets)/([^/]+)/([^/]+)/info/lfs/objects/batch$", self._lfs_batch),
            ("PUT", r"^/lfs/([0-9a-f]{64})$", self._put_blob),
            ("POST", r"^/api/v1/repos/(models|datasets)/([^/]+)/([^/]+)/commit/([^/]+)$", self._commit),
        )
        for method, pattern, route in routes:
            match = re.match(pattern, path)
            if method == request.method and match:
                with self._lock:
                    try:
                        status, payload = route(request, *match.groups())
                    except (KeyError, ValueError, TypeError) as exc:  # a body this server does not understand
                        self.unexpected.append(f"{request.method} {handler.path}: malformed body ({exc!r})")
                        status, payload = 400, {"Code": 400, "Message": f"fake hub cannot read the body: {exc!r}"}
                if injected is not None:
                    return self._reply_injected(handler, request, injected)
                return self._reply(handler, request, status, payload)
        with self._lock:
            self.unexpected.append(f"{request.method} {handler.path}")
        self._reply(handler, request, 501, {"Code": 501, "Message": f"fake hub does not implement {request.method} {path}"})

    def _injected(self, request: Request) -> Failure | None:
        for failure in self.failures:
            if failure.times > 0 and failure.method == request.method and failure.pattern.search(request.path):
                failure.times -= 1
                return failure
        return None

    def _reply_injected(self, handler: BaseHTTPRequestHandler, request: Request, failure: Failure) -> None:
        self._reply(handler, request, failure.status, {"Code": failure.status, "Message": "injected failure", "Success": False})

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, request: Request, status: int, payload: dict) -> None:
        request.status = status
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # ------------------------------------------------------------ auth

    def _token_of(self, request: Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):]
        match = re.search(r"m_session_id=([^;]+)", request.headers.get("Cookie", ""))
        return match.group(1) if match else None

    def _authorized(self, request: Request) -> bool:
        return self._token_of(request) == self.token

    @staticmethod
    def _legacy_error(status: int, message: str, code: int | None = None) -> tuple[int, dict]:
        return status, {"Code": code or status, "Message": message, "Success": False, "RequestId": "fake"}

    def _login(self, request: Request) -> tuple[int, dict]:
        token = json.loads(request.body or b"{}").get("AccessToken")
        if token != self.token:
            return self._legacy_error(400, "AccessToken is invalid or expired", BAD_TOKEN_CODE)
        return 200, {"Code": 200, "Success": True,
                     "Data": {"AccessToken": "git-token", "Username": self.username, "Email": "a@example.com"}}

    def _me(self, request: Request) -> tuple[int, dict]:
        if not self._authorized(request):
            return 401, {"success": False, "code": "InvalidAuthentication", "message": "invalid token"}
        return 200, {"success": True, "data": {"username": self.username, "email": "a@example.com"}}

    # ------------------------------------------------------------ repos

    def _visible(self, request: Request, repo: Repo | None) -> bool:
        return repo is not None and (repo.visibility != PRIVATE or
                                     (self._authorized(request) and repo.owner in self.writable_owners))

    def _get_repo_openapi(self, request: Request, segment: str, owner: str, name: str) -> tuple[int, dict]:
        repo = self.repos.get((segment[:-1], f"{owner}/{name}"))
        if not self._visible(request, repo):
            return 404, {"success": False, "code": "ResourceNotFound", "message": "not found"}
        return 200, {"success": True, "data": repo.payload()}

    def _get_repo_legacy(self, request: Request, segment: str, owner: str, name: str) -> tuple[int, dict]:
        repo = self.repos.get((segment[:-1], f"{owner}/{name}"))
        if not self._visible(request, repo):
            return self._legacy_error(404, "模型不存在" if segment == "models" else "数据集不存在")
        return 200, {"Code": 200, "Success": True, "Data": {"Path": repo.owner, "Name": repo.name,
                                                            "Visibility": repo.visibility}}

    def _create_repo(self, request: Request, segment: str) -> tuple[int, dict]:
        if not self._authorized(request):
            return self._legacy_error(401, "用户未登录")
        if segment == "models":
            body = json.loads(request.body)
            owner = body["Path"]
        else:
            body = self._multipart(request)
            owner = body["Owner"]
        name, visibility, license = body["Name"], int(body["Visibility"]), body["License"]
        repo_type = segment[:-1]
        if (repo_type, f"{owner}/{name}") in self.repos:
            code = MODEL_EXISTS_CODE if repo_type == "model" else DATASET_EXISTS_CODE
            return self._legacy_error(400, "该名称已被注册使用，请重新命名", code)
        if owner not in self.writable_owners:
            return self._legacy_error(403, f"no permission to create under {owner}")
        repo = self.add_repo(repo_type, f"{owner}/{name}", visibility)
        repo.license = license
        return 200, {"Code": 200, "Success": True, "Data": repo.payload()}

    @staticmethod
    def _multipart(request: Request) -> dict[str, str]:
        header = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + request.body)
        return {part.get_param("name", header="content-disposition"): part.get_content().strip()
                for part in message.iter_parts()}

    def _writable_repo(self, request: Request, segment: str, owner: str, name: str) -> Repo | tuple[int, dict]:
        if not self._authorized(request):
            return self._legacy_error(401, "用户未登录")
        repo = self.repos.get((segment[:-1], f"{owner}/{name}"))
        if repo is None:
            return self._legacy_error(404, "repo does not exist")
        if owner not in self.writable_owners:
            return self._legacy_error(403, "permission denied")
        return repo

    # ------------------------------------------------------------ files

    def _lfs_batch(self, request: Request, segment: str, owner: str, name: str) -> tuple[int, dict]:
        repo = self._writable_repo(request, segment, owner, name)
        if not isinstance(repo, Repo):
            return repo
        body = json.loads(request.body)
        if body.get("operation") != "upload":
            return self._legacy_error(400, f"unknown LFS operation {body.get('operation')!r}")
        objects = []
        for obj in body["objects"]:
            oid = obj["oid"]
            if oid in self.blobs:
                objects.append({"oid": oid, "size": obj["size"]})
            else:
                objects.append({"oid": oid, "size": obj["size"], "actions": {"upload": {"href": f"{self.url}/lfs/{oid}"}}})
        return 200, {"Code": 200, "Success": True, "Data": {"objects": objects}}

    def _put_blob(self, request: Request, oid: str) -> tuple[int, dict]:
        if not self._authorized(request):
            return self._legacy_error(401, "unauthorized")
        if hashlib.sha256(request.body).hexdigest() != oid:
            return self._legacy_error(400, "sha256 does not match the uploaded bytes")
        self.blobs[oid] = request.body
        return 200, {"Code": 200, "Success": True}

    def _commit(self, request: Request, segment: str, owner: str, name: str, revision: str) -> tuple[int, dict]:
        repo = self._writable_repo(request, segment, owner, name)
        if not isinstance(repo, Repo):
            return repo
        body = json.loads(request.body)
        staged: dict[str, bytes] = {}
        for action in body["actions"]:
            if action["action"] not in ("create", "update"):
                return self._legacy_error(400, f"unsupported action {action['action']!r}")
            if action["type"] == "lfs":
                blob = self.blobs.get(action["sha256"])
                if blob is None or len(blob) != action["size"]:
                    return self._legacy_error(400, f"LFS object for {action['path']} was never uploaded")
                staged[action["path"]] = blob
            elif action["type"] == "normal" and action["encoding"] == "base64":
                staged[action["path"]] = base64.b64decode(action["content"])
            else:
                return self._legacy_error(400, f"unsupported file type {action['type']!r}")
        repo.files.update(staged)
        repo.commits.append({"revision": revision, "message": body["commit_message"], "paths": sorted(staged)})
        return 200, {"Code": 200, "Success": True, "Data": {"CommitId": f"c{len(repo.commits)}"}}
