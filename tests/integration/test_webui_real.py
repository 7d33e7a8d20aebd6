"""The real LLaMA Board (`llamafactory-cli webui`) from the managed env through `stylewrap webui`:
it answers on 127.0.0.1 and nowhere else; stopped by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from console import STYLEWRAP, environment
from fakeopenai import free_port

pytestmark = pytest.mark.integration


def outward_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_llama_board_answers_on_localhost_only(tmp_path):
    port = free_port()
    log = (tmp_path / "webui.log").open("w")
    # its own process group, so the UI and stylewrap stop together and nothing else does
    process = subprocess.Popen([str(STYLEWRAP), "webui", "--backend", "llamafactory", "--port", str(port)], cwd=tmp_path,
                               env=environment(None), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(1)
        assert page is not None, (tmp_path / "webui.log").read_text()
        assert "gradio" in page.lower()
        other = outward_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=3).close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
