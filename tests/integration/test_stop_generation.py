"""Stop ends the generation on a real model server, not only the page's stream: both backends'
servers (ms-swift deploy, LLaMA-Factory api, transformers engine) serving a tiny model that never
ends an answer, asked through `stylewrap app` (the installed console script), the asker leaving
after a few pieces as the page's Stop does. What is measured is the server's own work: the CPU time
of its process while it generates, and after the asker left (/proc/<pid>/stat, all its threads).

Neither backend stops by itself: each runs `model.generate` in a thread of its own feeding a queue,
and a client leaving only stops the queue being read. backends/serve_launcher.py adds the stopping
criterion that ends it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ports import free_port
from stylewrap.serve import servers

pytestmark = pytest.mark.integration

# the tiny model with its output rows for the special tokens zeroed: greedy decoding never picks
# one (some other token always scores above 0), so an answer runs to max_tokens
MAKE_ENDLESS = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
source, target = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(source)
model = AutoModelForCausalLM.from_pretrained(source)
model.config.tie_word_embeddings = False
head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=False)
head.weight = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
with torch.no_grad():
    head.weight[tokenizer.all_special_ids] = 0
model.lm_head = head
model.save_pretrained(target)
tokenizer.save_pretrained(target)
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WINDOW_S = 3.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_over(pid: int, seconds: float) -> float:
    start = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - start


@pytest.fixture(scope="module")
def endless_model(tiny_model, tmp_path_factory) -> Path:
    import shutil

    from stylewrap.backends.envs import env_python

    out = tmp_path_factory.mktemp("endless") / "model"
    python = env_python("swift") or env_python("llamafactory")
    subprocess.run([str(python), "-c", MAKE_ENDLESS, str(tiny_model), str(out)], check=True, capture_output=True)
    for name in ("chat_template.jinja", "generation_config.json"):
        if (tiny_model / name).exists():
            shutil.copy(tiny_model / name, out / name)
    return out


@pytest.fixture(scope="module", params=["llamafactory", "swift"])
def deployed(request, endless_model, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(servers.STATE_DIR_VAR, str(tmp_path_factory.mktemp("servers")))
        port = free_port()
        argv = [str(Path(sys.executable).parent / "stylewrap"), "deploy", "--backend", request.param,
                "--model", str(endless_model), "--template", "qwen", "--port", str(port), "--detach"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, result.stdout + result.stderr
        record = servers.load_record(port)
        assert result.stdout.rstrip().splitlines()[-2:] == [
            f"next: stylewrap chat --base-url {record.base_url}", f"  or: stylewrap app --base-url {record.base_url}   (the web page)"]
        yield record
        servers.stop(record)


@pytest.fixture
def app(deployed):
    process = subprocess.Popen([str(Path(sys.executable).parent / "stylewrap"), "app", "--port", "0",
                                "--base-url", deployed.base_url, "--model", deployed.models[0]],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    link = process.stdout.readline()
    assert link.startswith("chat page on http://"), link + process.stdout.read()
    yield link.split()[3]
    process.terminate()
    process.wait(timeout=30)


def open_answer(link: str, model: str) -> socket.socket:
    """Ask through the app as the page does (token -> cookie, POST /api/chat); the open connection."""
    address = link.split("//")[1].split("/")[0]
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as first:
        first.sendall(f"GET /?{link.split('?')[1]} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
        reply = first.makefile("rb").read().decode()
    cookie = next(line.split(":", 1)[1].split(";")[0].strip() for line in reply.splitlines()
                  if line.lower().startswith("set-cookie:"))
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "我听说在遥远的东方？"}],
                       "max_tokens": 1500, "temperature": 0}).encode()
    page = socket.create_connection((host, int(port)), timeout=120)
    page.sendall(f"POST /api/chat HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
                 f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return page


def read_pieces(page: socket.socket, count: int) -> bytes:
    received = b""
    while received.count(b"data: {") < count:
        piece = page.recv(65536)
        assert piece and b"[DONE]" not in received, received.decode("utf-8", "replace")
        received += piece
    return received


def test_the_server_stops_generating_when_the_asker_leaves(deployed, app):
    page = open_answer(app, deployed.models[0])
    read_pieces(page, 3)
    generating = cpu_over(deployed.pid, WINDOW_S)
    read_pieces(page, 1)                 # still answering after the window: the answer is a long one
    page.close()                         # the page's Stop
    time.sleep(1.0)                      # the server notices, and the step under way ends
    after_stop = cpu_over(deployed.pid, WINDOW_S)
    print(f"{deployed.backend}: server CPU {generating:.2f} s while generating, {after_stop:.2f} s after Stop "
          f"(each over {WINDOW_S} s)")
    assert generating > 0.5, generating                  # it did work hard while answering
    assert after_stop < generating / 5, (generating, after_stop)
