"""`stylewrap deploy`, `chat` and `app` against real backend servers serving the tiny model.

One server per backend for the whole module (startup dominates): started detached through the CLI
in a subprocess with an API key, then stopped and checked by PID. ms-swift serves the tiny model
with a random LoRA adapter beside it (`--model --adapter`); LLaMA-Factory serves a real trained run
(`--run`: the session's ms-swift LoRA run, its base model and template).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from chromium import open_chromium
from click.testing import CliRunner

from fakekeys import openai_key
from ports import free_port

from stylewrap.serve import servers
from stylewrap.cli import cli
from stylewrap.errors import InputError
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration

KEY_ENV = "STYLEWRAP_TEST_SERVER_API_KEY"
KEY = openai_key(31)
TUNED = "default-lora"
BACKENDS = ["llamafactory", "swift"]
# a random model rarely ends its answer: a server-side cap keeps the unchanged tutorial code short
SERVER_SETTINGS = ["--set", "deploy.extra_args.max_new_tokens=24"]

MAKE_LORA = """
import sys, torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(1)
base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
# init_lora_weights=False: non-zero B matrices, so the tuned model answers unlike the base; on every
# projection and scaled x16, since the speaking tiny model's greedy answer shrugs off a small nudge
config = LoraConfig(r=4, lora_alpha=64, init_lora_weights=False, task_type="CAUSAL_LM",
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
get_peft_model(base, config).save_pretrained(sys.argv[2])
"""


@pytest.fixture(scope="module")
def lora_adapter(tiny_model, tmp_path_factory) -> Path:
    from stylewrap.backends.envs import env_python

    python = env_python("swift") or env_python("llamafactory")
    out = tmp_path_factory.mktemp("lora") / "adapter"
    subprocess.run([str(python), "-c", MAKE_LORA, str(tiny_model), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(servers.STATE_DIR_VAR, str(tmp_path_factory.mktemp("servers")))
        patch.setenv(KEY_ENV, KEY)
        yield


def served_weights(request, backend: str) -> list[str]:
    if backend == "llamafactory":
        return ["--run", str(request.getfixturevalue("swift_run"))]
    return ["--model", str(request.getfixturevalue("tiny_model")), "--adapter", str(request.getfixturevalue("lora_adapter"))]


@pytest.fixture(scope="module", params=BACKENDS)
def deployed(request, state_dir):
    """A detached server of one backend: its record, as `stylewrap deploy --detach` left it."""
    backend, port = request.param, free_port()
    argv = [sys.executable, "-m", "stylewrap", "deploy", "--backend", backend, *served_weights(request, backend),
            "--port", str(port), "--api-key-env", KEY_ENV, "--detach", *SERVER_SETTINGS]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"serving on http://127.0.0.1:{port}/v1" in result.stdout
    record = servers.load_record(port)
    assert f"models: {', '.join(record.models)}\n" in result.stdout
    yield record
    servers.stop(record)


def client(record, api_key=KEY):
    from openai import OpenAI

    return OpenAI(api_key=api_key, base_url=record.base_url, max_retries=0)


def expected_models(record, tiny_model) -> set[str]:
    return {TUNED, tiny_model.name} if record.backend == "swift" else {TUNED}


def test_model_list_has_the_printed_names(deployed, tiny_model):
    assert set(deployed.models) == expected_models(deployed, tiny_model)
    assert {m.id for m in client(deployed).models.list()} == expected_models(deployed, tiny_model)


TCP_LISTEN = "0A"


def listening_addresses(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket these processes listen on, read from /proc."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):   # a descriptor closed while we look
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pids[0]}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and inode in inodes:
                found.add(_kernel_address(local, family))
    return found


def _kernel_address(text: str, family: int) -> tuple[str, int]:
    """/proc/net/tcp's hex ADDRESS:PORT; the address is 32-bit words in host byte order."""
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port, 16)


def test_listening_addresses_sees_what_a_process_binds():
    with socket.socket() as anywhere, socket.socket() as loopback:
        anywhere.bind(("0.0.0.0", 0))
        loopback.bind(("127.0.0.1", 0))
        for sock in (anywhere, loopback):
            sock.listen()
        found = listening_addresses([os.getpid()])
        assert {("0.0.0.0", anywhere.getsockname()[1]), ("127.0.0.1", loopback.getsockname()[1])} <= found


def test_the_server_listens_on_127_0_0_1_only(deployed):
    # left alone, LLaMA-Factory binds 0.0.0.0 (API_HOST)
    members = servers.group_members(deployed.pid)
    assert listening_addresses(members) == {("127.0.0.1", deployed.port)}


def test_every_reply_names_the_printed_model(deployed):
    # left alone, LLaMA-Factory lists its one model as `gpt-3.5-turbo` (API_MODEL_NAME)
    messages = [{"role": "user", "content": "你好"}]
    for model in deployed.models:
        plain = client(deployed).chat.completions.create(model=model, messages=messages, max_tokens=4)
        chunks = list(client(deployed).chat.completions.create(model=model, messages=messages, max_tokens=4, stream=True))
        assert plain.model == model
        assert len(chunks) >= 2 and {chunk.model for chunk in chunks} == {model}


def test_tutorial_client_code_plain_streamed_multi_turn(deployed):
    # The 古文翻译腔 tutorial's client code, verbatim but for base_url and api_key.
    from openai import OpenAI
    client = OpenAI(
        api_key=KEY,
        base_url=f'http://localhost:{deployed.port}/v1',
    )
    query = '讲一下唐朝建立的历史'
    messages = [{
        'role': 'user',
        'content': query
    }]
    resp = client.chat.completions.create(
        model='default-lora',
        messages=messages,
        seed=42)
    response = resp.choices[0].message.content
    assert isinstance(response, str) and resp.choices[0].finish_reason in ("stop", "length")

    messages.append({'role': 'assistant', 'content': response})
    query = '给我讲一个笑话'
    messages.append({'role': 'user', 'content': query})
    stream_resp = client.chat.completions.create(
        model='default-lora',
        messages=messages,
        stream=True,
        seed=42)
    chunks = [chunk for chunk in stream_resp]
    assert len(chunks) >= 2
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in chunks)


def test_base_and_tuned_answer_differently_where_both_are_served(deployed, tiny_model):
    answers = {}
    for model in sorted(expected_models(deployed, tiny_model)):
        resp = client(deployed).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "你好"}], max_tokens=8, temperature=0)
        answers[model] = resp.choices[0].message.content
    assert len(set(answers.values())) == len(answers), answers


@pytest.mark.parametrize("deployed", ["llamafactory"], indirect=True)
def test_a_trained_run_is_served_with_its_own_weights(deployed, swift_run):
    # `stylewrap deploy --run RUN_DIR --backend llamafactory` on a run ms-swift trained: the run's
    # base model and template, and its adapter from inside the checkpoint folder ms-swift keeps it in
    run = RunInfo.load(swift_run)
    argv = json.loads(shlex.split(deployed.command)[-1])["argv"]
    assert argv[argv.index("--model_name_or_path") + 1] == run.base_model
    assert argv[argv.index("--template") + 1] == run.template
    assert f"Loaded adapter(s): {swift_run / run.adapter_dir}\n" in Path(deployed.log_file).read_text(encoding="utf-8")
    reply = client(deployed).chat.completions.create(model=TUNED, messages=[{"role": "user", "content": "你是谁？"}])
    assert reply.choices[0].message.content and reply.choices[0].finish_reason in ("stop", "length")


def test_api_key_is_enforced(deployed):
    import openai

    for wrong in ("EMPTY", "sk-wrong"):
        with pytest.raises(openai.AuthenticationError) as info:
            client(deployed, api_key=wrong).chat.completions.create(
                model=TUNED, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert info.value.status_code == 401
    request = urllib.request.Request(f"{deployed.base_url}/chat/completions", method="POST",
                                     data=json.dumps({"model": TUNED, "messages": []}).encode())
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401


def test_unknown_model_is_404_on_every_backend(deployed):
    import openai

    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client(deployed).chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])


def test_sixteen_concurrent_requests_all_answered(deployed):
    from openai import AsyncOpenAI

    async def ask_all():
        async with AsyncOpenAI(api_key=KEY, base_url=deployed.base_url, max_retries=0, timeout=300) as aclient:
            return await asyncio.gather(*[
                aclient.chat.completions.create(model=TUNED, max_tokens=6,
                                                messages=[{"role": "user", "content": f"question {i}"}])
                for i in range(16)
            ])

    responses = asyncio.run(ask_all())
    assert len(responses) == 16
    assert all(r.choices[0].finish_reason in ("stop", "length") for r in responses)
    assert all(isinstance(r.choices[0].message.content, str) for r in responses)


def test_busy_port_is_refused_before_starting_anything(deployed, tiny_model):
    from stylewrap.config import load_config
    from stylewrap.serve.deploy import DeployRequest, start

    config = load_config(search=False)
    with pytest.raises(InputError, match=f"port {deployed.port} on 127.0.0.1 is busy") as info:
        start(DeployRequest(model=str(tiny_model), backend=deployed.backend, port=deployed.port), config)
    assert f"PID {deployed.pid}" in str(info.value)
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        port = foreign.getsockname()[1]
        with pytest.raises(InputError, match="choose another with --port"):
            start(DeployRequest(model=str(tiny_model), backend=deployed.backend, port=port), config)
    assert servers.load_record(port) is None


def test_terminal_chat_keeps_history_and_resets(deployed):
    first, second, third = "alpha-marker-111", "beta-marker-222", "gamma-marker-333"
    log_before = Path(deployed.log_file).read_text(encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["chat", "--base-url", deployed.base_url, "--model", TUNED, "--api-key-env", KEY_ENV, "--max-tokens", "4"],
        input=f"{first}\n{second}\n/reset\n{third}\n/exit\n",
    )
    assert result.exit_code == 0, result.output
    assert f"chatting with {TUNED}" in result.output and "(conversation cleared)" in result.output
    assert result.output.count(f"{TUNED}> ") == 3
    log = Path(deployed.log_file).read_text(encoding="utf-8")[len(log_before):]
    # both backends log each request's messages: the second request carries the first turn, the
    # one after /reset does not
    per_request = log.count(second)
    assert per_request >= 1
    assert log.count(first) == 2 * per_request
    assert log.count(third) == per_request


def test_terminal_chat_writes_the_reply_piece_by_piece(deployed):
    from stylewrap.serve.chat import Conversation, chat_loop, resolve_endpoint

    # what `stylewrap chat` runs, with each write kept apart (the command echoes each one as it comes)
    question = "讲一下唐朝建立的历史"
    typed = iter([question, "/exit"])
    written: list[str] = []
    endpoint = resolve_endpoint(deployed.base_url, TUNED, KEY_ENV)
    chat_loop(endpoint, Conversation(), read=lambda _prompt: next(typed), write=written.append,
              max_tokens=16, temperature=0)
    assert written[-1] == "\n"
    pieces = written[written.index(f"{TUNED}> ") + 1:-1]
    assert len(pieces) >= 2, pieces
    whole = client(deployed).chat.completions.create(
        model=TUNED, messages=[{"role": "user", "content": question}], max_tokens=16, temperature=0)
    assert "".join(pieces) == whole.choices[0].message.content




@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from open_chromium(tmp_path_factory, "1280,800")


def artifact_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("STYLEWRAP_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_web_page_streams_an_answer_in_chromium(deployed, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app = subprocess.Popen(
        [sys.executable, "-m", "stylewrap", "app", "--base-url", deployed.base_url, "--api-key-env", KEY_ENV,
         "--port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = app.stdout.readline()
        assert first_line.startswith("chat page on http://127.0.0.1:"), first_line + app.stdout.read()
        browser.get(first_line.split()[3])
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        side_by_side = len(deployed.models) > 1
        assert browser.find_element(By.ID, "compare-label").is_displayed() == side_by_side
        if side_by_side:
            browser.find_element(By.ID, "compare").click()
        browser.find_element(By.ID, "input").send_keys("我听说在遥远的东方？")
        browser.find_element(By.ID, "send").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant, .msg.error") and all(
            e.get_attribute("data-done") for e in d.find_elements(By.CSS_SELECTOR, ".msg.assistant, .msg.error")))
        columns = browser.find_elements(By.CSS_SELECTOR, ".column")
        assert [c.get_attribute("data-model") for c in columns] == deployed.models[: 2 if side_by_side else 1]
        assert browser.find_elements(By.CSS_SELECTOR, ".msg.error") == []
        replies = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")
        assert len(replies) == len(columns)
        shot = artifact_dir(tmp_path_factory) / f"webapp-{deployed.backend}.png"
        assert browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        # several pieces arrived one after another: the answer was streamed, not delivered whole.
        # (A backend holds back tokens that are not yet whole UTF-8 characters, so one random
        # model's reply may arrive in one piece; not every column's.)
        chunks = [int(r.get_attribute("data-chunks") or 0) for r in replies]
        assert max(chunks) >= 2, chunks
    finally:
        app.terminate()
        app.wait(timeout=30)


def test_status_logs_and_stop_leave_no_process(deployed):
    runner = CliRunner()
    status = runner.invoke(cli, ["deploy", "status"])
    assert status.exit_code == 0 and "answering" in status.output and f"PID {deployed.pid}" in status.output
    logs = runner.invoke(cli, ["deploy", "logs", "--port", str(deployed.port), "-n", "5"])
    assert logs.exit_code == 0 and logs.output.strip()
    assert KEY not in Path(deployed.log_file).read_text(encoding="utf-8")

    members = servers.group_members(deployed.pid)
    assert deployed.pid in members
    stopped = runner.invoke(cli, ["deploy", "stop", "--port", str(deployed.port)])
    assert stopped.exit_code == 0, stopped.output
    assert not servers.pid_alive(deployed.pid)
    assert not any(servers.pid_alive(pid) for pid in members)
    assert servers.group_members(deployed.pid) == []
    assert servers.load_record(deployed.port) is None
    servers.check_port_free("127.0.0.1", deployed.port)


def test_foreground_server_with_its_own_name_stops_with_ctrl_c(state_dir, tiny_model):
    port, name = free_port(), "guwen-tiny"
    process = subprocess.Popen(
        [sys.executable, "-m", "stylewrap", "deploy", "--backend", "llamafactory", "--model", str(tiny_model),
         "--port", str(port), "--served-model-name", name, *SERVER_SETTINGS],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("models:"):
                break
        assert lines[-2:-1] and lines[-2].startswith(f"serving on http://127.0.0.1:{port}/v1"), "".join(lines)
        assert lines[-1] == f"models: {name}\n"
        server_pid = int(lines[-2].split("(PID ")[1].split(",")[0])
        assert servers.pid_alive(server_pid)
        record = servers.load_record(port)
        assert [m.id for m in client(record).models.list()] == [name]
        reply = client(record).chat.completions.create(model=name, messages=[{"role": "user", "content": "你好"}])
        assert reply.model == name and reply.choices[0].finish_reason in ("stop", "length")
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "server stopped" in output, output
    assert not servers.pid_alive(server_pid) and servers.group_members(server_pid) == []
    assert servers.load_record(port) is None


def test_swift_fails_loudly_instead_of_moving_to_another_port(state_dir, tiny_model, tmp_path):
    # ms-swift alone would serve on the next free port; the launcher pins the asked-for one. The
    # busy-port check before starting normally catches this; here the port is taken behind its back.
    from stylewrap.config import load_config
    from stylewrap.serve.deploy import DeployRequest, plan
    from stylewrap.runner import spawn

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        deploy_plan = plan(DeployRequest(model=str(tiny_model), backend="swift", port=port), load_config(search=False))
        process = spawn(deploy_plan.invocation, log_file=tmp_path / "server.log")
        returncode = process.wait(timeout=300)
    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert returncode != 0
    assert "address already in use" in log.lower()
    assert "Uvicorn running on" not in log

