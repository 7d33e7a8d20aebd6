"""`stylewrap chat` against a real local OpenAI-compatible server that records what it receives
(tests/fakeopenai.py, own process): the system prompt reaches it, and Ctrl-C typed at a real
pseudo-terminal while a reply streams ends that reply cleanly.

tests/integration/test_deploy.py chats with the real backend servers.
"""

from __future__ import annotations

import codecs
import os
import pty
import select
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from fakeopenai import FakeServer
from stylewrap.cli import cli

KEY_ENV = "STYLEWRAP_TEST_CHAT_KEY"
KEY = "test-key"      # what the fake server expects unless scripted otherwise
MODEL = "teacher-1"   # what it serves


@pytest.fixture(scope="module")
def fake():
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture
def chat_env(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv(KEY_ENV, KEY)
    # no stylewrap server records of this machine's own servers leak in
    monkeypatch.setenv("STYLEWRAP_STATE_DIR", str(tmp_path / "servers"))
    return dict(os.environ)


def chat_args(fake: FakeServer) -> list[str]:
    return ["chat", "--base-url", fake.base_url, "--model", MODEL, "--api-key-env", KEY_ENV]


def sent_messages(fake: FakeServer) -> list[list[dict]]:
    return [entry["messages"] for entry in fake.log()]


def test_system_prompts_reach_the_server(fake, chat_env):
    fake.script(reply="as you wish")
    typed = ["first", "/system speak like a classical scholar", "second", "third", "/system", "fourth", "/exit"]
    result = CliRunner().invoke(cli, [*chat_args(fake), "--system", "be brief"], input="\n".join(typed) + "\n")
    assert result.exit_code == 0, result.output
    scholar = {"role": "system", "content": "speak like a classical scholar"}
    assert sent_messages(fake) == [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"}],
        [scholar, {"role": "user", "content": "second"}],
        [scholar, {"role": "user", "content": "second"}, {"role": "assistant", "content": "as you wish"},
         {"role": "user", "content": "third"}],
        [{"role": "user", "content": "fourth"}],
    ]
    assert result.output.count(f"{MODEL}> as you wish\n") == 4


class Terminal:
    """A program on a pseudo-terminal that is its controlling terminal: a typed Ctrl-C (0x03)
    reaches its foreground process group as SIGINT, as at a real terminal."""

    TAKE_TERMINAL = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                     "os.execv(sys.argv[1], sys.argv[1:])")

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.master, follower = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-c", self.TAKE_TERMINAL, *argv], stdin=follower,
                                        stdout=follower, stderr=follower, env=env, start_new_session=True)
        os.close(follower)
        self.screen = ""
        self._seen = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def _read(self, timeout: float) -> bool:
        """Append what the program wrote; False at end of output."""
        if not select.select([self.master], [], [], timeout)[0]:
            raise AssertionError(f"the program wrote nothing for {timeout}s; screen:\n{self.screen}")
        try:
            data = os.read(self.master, 4096)
        except OSError:   # EIO: every process holding the terminal has exited
            data = b""
        self.screen += self._decoder.decode(data)
        return bool(data)

    def read_until(self, marker: str, timeout: float = 120) -> str:
        """The screen since the last call, up to and including `marker`."""
        deadline = time.monotonic() + timeout
        while marker not in self.screen[self._seen:]:
            if not self._read(max(deadline - time.monotonic(), 0)):
                raise AssertionError(f"the program ended before writing {marker!r}; screen:\n{self.screen}")
        end = self.screen.index(marker, self._seen) + len(marker)
        shown, self._seen = self.screen[self._seen:end], end
        return shown

    def wait(self, timeout: float = 60) -> int:
        while self._read(timeout):
            pass
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def test_ctrl_c_while_a_reply_streams_ends_that_reply_and_the_chat_goes_on(fake, chat_env):
    # The first reply sends its first word, then holds the rest back. Not forever: a SIGINT that
    # lands just before the client blocks in poll() waits for the next data to be acted on.
    fake.script(reply="one two three four", faults=["stall"], slow_seconds=30)
    terminal = Terminal([sys.executable, "-m", "stylewrap", *chat_args(fake)], chat_env)
    try:
        terminal.read_until("you> ")
        terminal.type("first question\n")
        terminal.read_until(f"{MODEL}> one ")   # on screen while the server still holds the rest back
        terminal.type("\x03")
        interrupted = terminal.read_until("you> ")
        assert "(reply interrupted; that turn is not kept)" in interrupted and "two" not in interrupted
        terminal.type("second question\n")
        assert f"{MODEL}> one two three four\n" in terminal.read_until("you> ").replace("\r\n", "\n")
        # Ctrl-D leaves (Ctrl-C at the prompt leaves too, but CPython drops a SIGINT that lands
        # between printing input()'s prompt and its read(), which a test typing at once can hit)
        terminal.type("\x04")
        returncode = terminal.wait()
    finally:
        terminal.close()
    assert returncode == 0, terminal.screen
    assert "Traceback" not in terminal.screen and "KeyboardInterrupt" not in terminal.screen
    # the interrupted turn is not part of the history the next request carries
    assert sent_messages(fake) == [[{"role": "user", "content": "first question"}],
                                   [{"role": "user", "content": "second question"}]]


def test_model_output_reaches_the_terminal_without_control_characters(fake, chat_env):
    # form feed, clear-screen, a window-title sequence split over two pieces, bidi override, a bell
    fake.script(reply="hi\x0c there\x1b[2J ok\x1b]0;pwned\x07\ttab \u202eend\x07\nsecond line")
    terminal = Terminal([sys.executable, "-m", "stylewrap", *chat_args(fake)], chat_env)
    try:
        terminal.read_until("you> ")
        terminal.type("say it\n")
        shown = terminal.read_until("you> ")
        terminal.type("\x04")
        assert terminal.wait() == 0
    finally:
        terminal.close()
    reply = shown.replace("\r\n", "\n").split(f"{MODEL}> ", 1)[1]
    assert reply.startswith("hi there ok\ttab end\nsecond line\n"), repr(reply)
    assert not any(char in reply for char in "\x0c\x1b\x07\u202e"), repr(reply)


def test_the_prompt_edits_lines_ctrl_c_clears_one_ctrl_d_leaves(fake, chat_env):
    fake.script(reply="noted")
    terminal = Terminal([sys.executable, "-m", "stylewrap", *chat_args(fake)], chat_env)
    try:
        terminal.read_until("you> ")
        terminal.type("first\n")
        terminal.read_until("you> ")
        terminal.type("half typed")
        terminal.read_until("half typed")       # echoed: the prompt is reading, Ctrl-C lands in input()
        terminal.type("\x03")
        try:
            terminal.read_until("you> ", timeout=15)   # a fresh prompt, the chat goes on
        except AssertionError:
            # CPython can drop a SIGINT that lands while readline sets the terminal up (seen once on a
            # loaded machine): a second Ctrl-C must then clear the line all the same
            terminal.type("\x03")
            terminal.read_until("you> ")
        terminal.type("\x1b[A")                 # arrow up: line editing recalls the last line sent
        terminal.read_until("first")
        terminal.type("\n")
        terminal.read_until("you> ")
        terminal.type("\x04")
        returncode = terminal.wait()
    finally:
        terminal.close()
    assert returncode == 0, terminal.screen
    assert "^[[A" not in terminal.screen and "Traceback" not in terminal.screen
    asked = [messages[-1]["content"] for messages in sent_messages(fake)]
    assert asked == ["first", "first"], asked   # the Ctrl-C'd line was never sent, the recalled one was


class ServerOfItsOwn(FakeServer):
    """A fake server leading its own process group, as every server stylewrap starts does, so a
    server record of it counts as running."""

    def __init__(self, models: list[str]):
        import fakeopenai

        self.process = subprocess.Popen([sys.executable, fakeopenai.__file__], stdout=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.port = int(self.process.stdout.readline().split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.script(models=models, reply=f"from {models[0]}")


@pytest.fixture
def two_servers(chat_env):
    from stylewrap.serve import servers

    served = [["tuned-a"], ["tuned-b", "base-b"]]
    running = [ServerOfItsOwn(models) for models in served]
    for server, models in zip(running, served):
        servers.save_record(servers.ServerRecord(
            pid=server.process.pid, host="127.0.0.1", port=server.port, backend="swift", models=models,
            log_file=os.devnull, command="fake", api_key_env=KEY_ENV, start_ticks=servers._start_ticks(server.process.pid)))
    yield running
    for server in running:
        server.stop()


def test_two_servers_running_are_named_never_a_fallback_to_port_8000(two_servers, chat_env):
    stylewrap = os.path.join(os.path.dirname(sys.executable), "stylewrap")
    piped = subprocess.run([stylewrap, "chat"], input="/exit\n", capture_output=True, text=True, env=chat_env, timeout=60)
    assert piped.returncode == 2, piped.stdout + piped.stderr
    assert "2 stylewrap servers are running" in piped.stderr and "8000" not in piped.stderr
    assert all(server.base_url in piped.stderr for server in two_servers)
    # --model served by only one of them picks that one
    chosen = subprocess.run([stylewrap, "chat", "--model", "base-b"], input="hello\n/exit\n", capture_output=True,
                            text=True, env=chat_env, timeout=60)
    assert chosen.returncode == 0, chosen.stderr
    assert f"chatting with base-b at {two_servers[1].base_url}" in chosen.stdout and "from tuned-b" in chosen.stdout
    # at a terminal it asks which
    terminal = Terminal([stylewrap, "chat"], chat_env)
    try:
        asked = terminal.read_until("which one").replace("\r\n", "\n")
        choices = dict(line.strip().split(". ", 1) for line in asked.splitlines() if line.startswith("  "))
        assert sorted(choices.values()) == sorted([f"{two_servers[0].base_url} (swift: tuned-a)",
                                                   f"{two_servers[1].base_url} (swift: tuned-b, base-b)"])
        terminal.type(next(n for n, text in choices.items() if "tuned-b" in text) + "\n")
        assert f"chatting with tuned-b at {two_servers[1].base_url}" in terminal.read_until("you> ")
        terminal.type("\x04")
        assert terminal.wait() == 0
    finally:
        terminal.close()
