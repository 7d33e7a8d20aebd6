"""What stylewrap's serving layer costs, measured side by side on the tiny model.

Run: .venv/bin/python bench/deploy.py MODEL_DIR [REQUESTS]
For each backend, the same server is started twice: bare (`python -m <server module>` with the same
flags) and through stylewrap's launcher (exact port, key check, model-name check), both running at
once. Printed per backend: startup seconds, median latency of REQUESTS short greedy chat requests
(the two servers take turns, so load drift hits both alike), and the ratios launcher / bare. Then
the time to the first streamed piece, directly and through `stylewrap app`'s proxy, and their ratio.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from stylewrap.config import load_config
from stylewrap.runner import Invocation
from stylewrap.serve import servers
from stylewrap.serve.deploy import DeployRequest, plan
from stylewrap.serve.webapp import Upstream, make_server

KEY_ENV = "STYLEWRAP_BENCH_API_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict, key: str | None) -> urllib.request.Request:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    return request


def latencies(targets: list[tuple[str, str, str | None]], requests: int) -> list[float]:
    """Median latency per target of short greedy requests, the targets taking turns request by request
    (so drift in the machine's load hits them alike)."""
    times: list[list[float]] = [[] for _ in targets]
    for i in range(requests):
        body = {"max_tokens": 8, "temperature": 0, "messages": [{"role": "user", "content": f"问题 {i}"}]}
        for slot, (base_url, model, key) in enumerate(targets):
            start = time.perf_counter()
            with urllib.request.urlopen(post(f"{base_url}/chat/completions", {**body, "model": model}, key), timeout=300) as response:
                json.loads(response.read())
            times[slot].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def first_piece_seconds(url: str, body: dict, key: str | None) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(post(url, body, key), timeout=300) as response:
        for line in response:
            if line.startswith(b"data:") and b'"content"' in line:
                return time.perf_counter() - start
    raise RuntimeError("no streamed content")


def started(inv: Invocation, record, log: Path) -> tuple[servers.ServerRecord, float]:
    record.log_file = str(log)
    start = time.perf_counter()
    servers.start(inv, record, startup_timeout=600)
    return record, time.perf_counter() - start


def bare_twin(guarded) -> tuple[Invocation, servers.ServerRecord]:
    """The same server with the same flags on another port, run as `python -m MODULE`: no launcher."""
    spec = json.loads(guarded.invocation.argv[-1])
    port = free_port()
    swap = {str(spec["port"]): str(port)}
    argv = [swap.get(arg, arg) for arg in spec["argv"]]
    env = {key: swap.get(value, value) for key, value in guarded.invocation.env.items()}
    record = servers.ServerRecord(**{**guarded.record.__dict__, "port": port, "api_key_env": None})
    return Invocation([guarded.invocation.argv[0], "-m", spec["module"], *argv], env=env), record


def time_to_first_piece(record, key: str) -> tuple[float, float]:
    """Median over 5 of direct and through-`stylewrap app` time to the first streamed piece."""
    body = {"model": record.models[0], "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": "你好"}]}
    httpd = make_server(Upstream(record.base_url, key, record.models[0]), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    app_url = f"http://127.0.0.1:{httpd.server_address[1]}/api/chat"
    try:
        pairs = [(first_piece_seconds(f"{record.base_url}/chat/completions", body, key), first_piece_seconds(app_url, body, None))
                 for _ in range(5)]
    finally:
        httpd.shutdown()
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> None:
    model_dir = sys.argv[1]
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    key = os.environ[KEY_ENV] = secrets.token_hex(16)
    tmp = Path(tempfile.mkdtemp(prefix="stylewrap-bench-"))
    os.environ[servers.STATE_DIR_VAR] = str(tmp)
    config = load_config(search=False)
    print(f"{'backend':<13} {'startup bare':>12} {'launcher':>9} {'ratio':>6}   {'latency bare':>12} {'launcher':>9} {'ratio':>6}")
    for backend in ("llamafactory", "swift"):
        quiet = {"verbose": False} if backend == "swift" else {}
        guarded = plan(DeployRequest(model=model_dir, backend=backend, port=free_port(), api_key_env=KEY_ENV,
                                     extra_args=quiet), config)
        bare_inv, bare_record = bare_twin(guarded)
        running = []
        try:
            bare, bare_startup = started(bare_inv, bare_record, tmp / f"{backend}-bare.log")
            running.append(bare)
            launched, launched_startup = started(guarded.invocation, guarded.record, tmp / f"{backend}-launcher.log")
            running.append(launched)
            bare_latency, launched_latency = latencies(
                [(bare.base_url, bare.models[0], None), (launched.base_url, launched.models[0], key)], requests)
            direct, proxied = time_to_first_piece(launched, key)
        finally:
            for record in running:
                servers.stop(record)
        print(f"{backend:<13} {bare_startup:>11.1f}s {launched_startup:>8.1f}s {launched_startup / bare_startup:>6.2f}   "
              f"{bare_latency * 1000:>10.1f}ms {launched_latency * 1000:>7.1f}ms {launched_latency / bare_latency:>6.2f}")
        print(f"{'':<13} first streamed piece: direct {direct * 1000:.1f}ms, through `stylewrap app` "
              f"{proxied * 1000:.1f}ms, ratio {proxied / direct:.2f}")


if __name__ == "__main__":
    main()
