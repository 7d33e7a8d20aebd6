"""`stylewrap webui` and `backend install --webui`: the backends' own training UIs (the SWIFT
tutorial's `swift web-ui`, LLaMA Board) from their managed envs, bound to 127.0.0.1.

The console script runs a stand-in program in a real venv here (what it receives is the point);
tests/integration/test_webui_real.py starts the real LLaMA Board from the managed env."""

from __future__ import annotations

import json

from conftest import make_venv
from console import run_stylewrap

from stylewrap.backends.envinstall import extras_argv
from stylewrap.backends.envs import ENVS_DIR_VAR, parse_pins, shipped_file

# the stand-in UI prints what it was started with and exits
ECHO = """
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "host": os.environ.get("GRADIO_SERVER_NAME"),
                  "port": os.environ.get("GRADIO_SERVER_PORT")}))
"""


def envs(tmp_path, gradio: bool):
    extra = {"gradio": "5.50.0"} if gradio else {}
    make_venv(tmp_path / "envs" / "swift", distributions={"ms-swift": "4.6.0", **extra}, scripts={"swift": ECHO})
    make_venv(tmp_path / "envs" / "llamafactory", distributions={"llamafactory": "0.9.5", **extra},
              scripts={"llamafactory-cli": ECHO})
    return {ENVS_DIR_VAR: str(tmp_path / "envs")}


def started_with(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


def test_each_ui_starts_from_its_env_bound_to_localhost(tmp_path):
    env = envs(tmp_path, gradio=True)
    swift = run_stylewrap("webui", "--backend", "swift", "--port", "7999", cwd=tmp_path, env=env)
    assert swift.returncode == 0, swift.stderr
    assert started_with(swift.stdout)["argv"] == ["web-ui", "--server_name", "127.0.0.1", "--server_port", "7999"]
    board = run_stylewrap("webui", "--backend", "llamafactory", cwd=tmp_path, env=env)
    assert board.returncode == 0, board.stderr
    # LLaMA Board binds 0.0.0.0 by itself: only GRADIO_SERVER_NAME keeps it on this machine
    assert started_with(board.stdout) == {"argv": ["webui"], "host": "127.0.0.1", "port": "7860"}
    assert "training UI: http://127.0.0.1:7860/" in board.stderr


def test_without_gradio_it_says_how_to_add_it(tmp_path):
    result = run_stylewrap("webui", "--backend", "swift", cwd=tmp_path, env=envs(tmp_path, gradio=False))
    assert result.returncode == 2
    assert "needs Gradio" in result.stderr and "stylewrap backend install swift --webui" in result.stderr
    assert "Traceback" not in result.stderr


def test_install_webui_and_deepspeed_add_their_pins_held_to_the_env_constraints(tmp_path):
    python = tmp_path / "bin" / "python"
    argv = extras_argv(python, ["webui", "deepspeed"], gpu=False)
    assert argv[:4] == [str(python), "-m", "pip", "install"]
    files = [argv[i + 1] for i, word in enumerate(argv) if word == "-r"]
    pins = {}
    for file in files:
        pins.update(parse_pins(open(file, encoding="utf-8").read(), file))
    assert pins["gradio"] == parse_pins(shipped_file("llamafactory.txt").read_text(), "lf")["gradio"]
    assert "deepspeed" in pins
    assert argv[-2:] == ["-c", str(shipped_file("constraints-cpu.txt"))]
    # and `backend install` takes them
    help_text = run_stylewrap("backend", "install", "--help", cwd=tmp_path).stdout
    assert "--webui" in help_text and "--deepspeed" in help_text
