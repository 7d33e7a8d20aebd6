"""What `stylewrap deploy` would start, per backend, and how it finds and stops its processes.

No backend runs here (tests/integration/test_deploy.py serves real models); these pin the exact
argv and env handed to each backend's server, the served-name rules and the PID bookkeeping.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from console import run_stylewrap
from fakekeys import openai_key

from stylewrap.backends import swift as swift_unit
from stylewrap.serve import servers
from stylewrap.serve.chat import Conversation
from stylewrap.cli import cli
from stylewrap.config import load_config
from stylewrap.serve.deploy import DeployRequest, plan
from stylewrap.errors import InputError, RunFailed
from stylewrap.rundir import RunInfo
from stylewrap.runner import Invocation, spawn


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Backend envs whose python exists, a Qwen2 model folder, a LoRA adapter folder, a state dir."""
    for name in ("llamafactory", "swift"):
        bin_dir = tmp_path / "envs" / name / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("STYLEWRAP_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.setenv(servers.STATE_DIR_VAR, str(tmp_path / "state"))
    model = tmp_path / "Qwen2-7B-Instruct"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    return tmp_path, model, adapter


def spec_of(invocation: Invocation) -> dict:
    assert invocation.argv[-2].endswith("serve_launcher.py")
    return json.loads(invocation.argv[-1])


def test_swift_serves_base_and_adapter_side_by_side_on_the_exact_port(world):
    tmp_path, model, adapter = world
    deploy_plan = plan(DeployRequest(model=str(model), adapter=adapter, backend="swift", port=8123), load_config(search=False))
    spec = spec_of(deploy_plan.invocation)
    assert deploy_plan.invocation.argv[0] == str(tmp_path / "envs" / "swift" / "bin" / "python")
    assert spec == {
        "module": "swift.cli.deploy",
        "argv": ["--model", str(model), "--adapters", f"default-lora={adapter}", "--template", "qwen",
                 "--system", "You are a helpful assistant.", "--model_type", "qwen2", "--served_model_name", "qwen2-7b-instruct",
                 "--host", "127.0.0.1", "--port", "8123", "--infer_backend", "transformers", "--max_batch_size", "1",
                 "--external_plugins", str(Path(swift_unit.__file__).with_name("serve_batching.py"))],
        "host": "127.0.0.1", "port": 8123, "served_models": ["default-lora", "qwen2-7b-instruct"], "api_key_env": None,
    }
    assert deploy_plan.invocation.env == {"STYLEWRAP_BATCH_WINDOW_MS": "20"}
    assert deploy_plan.record.models == ["default-lora", "qwen2-7b-instruct"]
    assert deploy_plan.record.base_url == "http://127.0.0.1:8123/v1"


def test_llamafactory_serves_one_model_named_through_its_env(world, monkeypatch):
    _, model, adapter = world
    monkeypatch.setenv("MY_SERVER_KEY", openai_key(51))
    request = DeployRequest(model=str(model), adapter=adapter, backend="llamafactory", served_model_name="classical",
                            api_key_env="MY_SERVER_KEY", extra_args={"max_new_tokens": 64})
    deploy_plan = plan(request, load_config(search=False))
    spec = spec_of(deploy_plan.invocation)
    assert spec["module"] == "llamafactory.cli"
    assert spec["argv"] == ["api", "--model_name_or_path", str(model), "--adapter_name_or_path", str(adapter),
                            "--template", "qwen", "--default_system", "You are a helpful assistant.",
                            "--infer_backend", "huggingface", "--max_new_tokens", "64"]
    assert spec["served_models"] == ["classical"] and spec["api_key_env"] == "MY_SERVER_KEY"
    assert deploy_plan.invocation.env == {"API_MODEL_NAME": "classical", "API_HOST": "127.0.0.1", "API_PORT": "8000"}
    # the key travels by env var name only: never on a command line, in a record or a log
    assert openai_key(51) not in json.dumps(deploy_plan.invocation.argv) + deploy_plan.record.command


def test_served_names(world):
    _, model, adapter = world
    config = load_config(search=False)
    alone = plan(DeployRequest(model=str(model), backend="swift"), config)
    assert alone.record.models == ["Qwen2-7B-Instruct"]
    with pytest.raises(InputError, match="also the base model's name"):
        plan(DeployRequest(model=str(model), adapter=adapter, backend="swift", served_model_name="qwen2-7b-instruct"), config)
    # the tutorial asks for the base by name: the hub id's last part, lowercased, unless named otherwise
    beside = plan(DeployRequest(model="Qwen/Qwen2-7B-Instruct", adapter=adapter, backend="swift"), config)
    assert beside.record.models == ["default-lora", "qwen2-7b-instruct"]
    named = plan(DeployRequest(model=str(model), adapter=adapter, backend="swift", base_served_name="base",
                               served_model_name="tuned"), config)
    assert named.record.models == ["tuned", "base"]


def test_base_served_name_through_the_console_script(world):
    """`stylewrap deploy --base-served-name` reaches the server's argv (dry run: nothing starts)."""
    tmp_path, model, adapter = world
    result = run_stylewrap("deploy", "--model", str(model), "--adapter", str(adapter), "--backend", "swift",
                                 "--base-served-name", "qwen2-7b-instruct-base", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"--served_model_name", "qwen2-7b-instruct-base"' in result.stdout


def test_bad_requests_are_input_errors(world, monkeypatch):
    tmp_path, model, adapter = world
    config = load_config(search=False)
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    with pytest.raises(InputError, match="UNSET_KEY_VAR"):
        plan(DeployRequest(model=str(model), backend="swift", api_key_env="UNSET_KEY_VAR"), config)
    with pytest.raises(InputError, match="no adapter_config.json"):
        plan(DeployRequest(model=str(model), adapter=tmp_path, backend="swift"), config)
    with pytest.raises(InputError, match="nothing to serve"):
        plan(DeployRequest(backend="swift"), config)
    with pytest.raises(InputError, match="unknown backend"):
        plan(DeployRequest(model=str(model), backend="vllm"), config)


def test_run_directory_supplies_weights_backend_and_template(world):
    tmp_path, model, adapter = world
    run_dir = tmp_path / "runs" / "r1"
    (run_dir / "output").mkdir(parents=True)
    (run_dir / "output" / "adapter_config.json").write_text("{}")
    RunInfo(run_id="r1", backend="swift", backend_version="4.6.0", base_model=str(model), method="lora",
            template="qwen2_5", command="swift sft ...", status="succeeded", adapter_dir="output").save(run_dir)
    spec = spec_of(plan(DeployRequest(run_dir=run_dir), load_config(search=False)).invocation)
    assert spec["module"] == "swift.cli.deploy"
    assert spec["argv"][:6] == ["--model", str(model), "--adapters", f"default-lora={run_dir / 'output'}", "--template", "qwen2_5"]

    RunInfo(run_id="r2", backend="swift", backend_version=None, base_model=str(model), method="lora", template=None,
            command="", status="failed", adapter_dir="missing").save(run_dir)
    with pytest.raises(InputError, match="no trained weights"):
        plan(DeployRequest(run_dir=run_dir), load_config(search=False))


def test_cli_dry_run_prints_the_command_and_bad_input_exits_2(world):
    _, model, adapter = world
    result = CliRunner().invoke(cli, ["deploy", "--backend", "swift", "--model", str(model), "--adapter", str(adapter), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "serve_launcher.py" in result.output and f"default-lora={adapter}" in result.output
    both = CliRunner().invoke(cli, ["deploy", "--run", str(adapter), "--model", str(model)])
    assert both.exit_code == 2 and "not both" in both.output
    none = CliRunner().invoke(cli, ["deploy", "stop"])
    assert none.exit_code == 2 and "no stylewrap server is recorded" in none.output


def test_stop_ends_the_whole_process_group_by_pid(world):
    tmp_path, _, _ = world
    # a parent with a child, as a server with workers would be
    inv = Invocation(["sh", "-c", "sleep 300 & sleep 300"])
    record = servers.ServerRecord(pid=0, host="127.0.0.1", port=1, backend="test", models=[],
                                 log_file=str(tmp_path / "log"), command=inv.shell_line())
    process = spawn(inv, log_file=Path(record.log_file))
    record.pid, record.start_ticks = process.pid, servers._start_ticks(process.pid)
    servers.save_record(record)
    for _ in range(200):
        if len(servers.group_members(process.pid)) >= 2:
            break
        time.sleep(0.05)
    members = servers.group_members(process.pid)
    assert len(members) >= 2 and process.pid in members
    assert servers.is_running(record)

    assert servers.stop(record) is True
    assert not any(servers.pid_alive(pid) for pid in members)
    assert servers.load_record(1) is None
    assert servers.stop(record) is False


def test_a_recycled_pid_is_never_signalled(world):
    tmp_path, _, _ = world
    # our own PID stands in for "some other process that now has the recorded PID"
    record = servers.ServerRecord(pid=os.getpid(), host="127.0.0.1", port=2, backend="test", models=[],
                                 log_file=str(tmp_path / "log"), command="", start_ticks=1)
    assert not servers.is_running(record)
    assert servers.stop(record) is False


def test_conversation_history_system_and_reset():
    conversation = Conversation(system="用古文翻译腔回答")
    conversation.add_exchange("你是谁？", "吾乃小明也。")
    assert conversation.messages("还有呢？") == [
        {"role": "system", "content": "用古文翻译腔回答"},
        {"role": "user", "content": "你是谁？"},
        {"role": "assistant", "content": "吾乃小明也。"},
        {"role": "user", "content": "还有呢？"},
    ]
    conversation.reset(None)
    assert conversation.messages("hi") == [{"role": "user", "content": "hi"}]


def _record(tmp_path) -> servers.ServerRecord:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return servers.ServerRecord(pid=0, host="127.0.0.1", port=port, backend="test", models=[],
                               log_file=str(tmp_path / "server.log"), command="")


def test_a_server_that_dies_is_reported_with_its_last_log_lines(world):
    tmp_path, _, _ = world
    dying = Invocation([sys.executable, "-c", "print('CUDA out of memory, probably'); raise SystemExit(3)"])
    record = _record(tmp_path)
    with pytest.raises(RunFailed, match="exited with code 3") as info:
        servers.start(dying, record, startup_timeout=60)
    assert "CUDA out of memory, probably" in str(info.value)
    assert servers.load_record(record.port) is None


def test_a_server_that_never_answers_is_stopped_after_the_timeout(world):
    tmp_path, _, _ = world
    record = _record(tmp_path)
    with pytest.raises(RunFailed, match="did not answer within 1s"):
        servers.start(Invocation(["sleep", "300"]), record, startup_timeout=1)
    assert record.pid and not servers.pid_alive(record.pid)


def test_chat_commands_then_ctrl_c_clears_the_line_and_ctrl_d_ends_cleanly():
    from stylewrap.serve.chat import Endpoint, chat_loop

    typed = iter(["/system 用古文翻译腔回答", "/bogus", "/reset", "/system", KeyboardInterrupt, EOFError])
    written: list[str] = []

    def read(prompt: str) -> str:
        line = next(typed)
        if isinstance(line, type):   # Ctrl-C drops the line and prompts again; Ctrl-D ends the chat
            raise line
        return line

    conversation = Conversation()
    conversation.add_exchange("q", "a")
    result = chat_loop(Endpoint("http://127.0.0.1:9/v1", "m", "EMPTY"), conversation, read=read, write=written.append)
    text = "".join(written)
    assert "system prompt set" in text and "unknown command" in text and "system prompt cleared" in text
    assert text.endswith("^C\n\n")   # Ctrl-C: a fresh prompt; Ctrl-D: a clean end of the chat
    assert result.system is None and result.turns == []


def test_swift_refuses_to_batch_requests_to_an_unmerged_adapter(world):
    # measured on an H200: with max_batch_size 16 every batched request to the LoRA failed inside
    # ms-swift 4.6 + peft 0.20; one at a time works, and a merged model batches fine
    _, model, adapter = world
    config = load_config(search=False)
    batched = {"max_batch_size": 16}
    with pytest.raises(InputError, match="unmerged adapter") as refused:
        plan(DeployRequest(model=str(model), adapter=adapter, backend="swift", extra_args=batched), config)
    assert refused.value.location.field == "deploy.extra_args.max_batch_size"
    assert "stylewrap export" in refused.value.one_line()
    with pytest.raises(InputError, match="unmerged adapter") as refused:
        plan(DeployRequest(model=str(model), adapter=adapter, backend="swift"), load_config(search=False, overrides=["deploy.batch_size=4"]))
    assert refused.value.location.field == "deploy.batch_size"
    merged = plan(DeployRequest(model=str(model), backend="swift", extra_args=batched), config)
    assert "--max_batch_size" in spec_of(merged.invocation)["argv"]
    plan(DeployRequest(model=str(model), adapter=adapter, backend="llamafactory", extra_args=batched), config)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_swift_batches_sixteen_concurrent_requests_by_default_gathering_a_burst(world):
    """16 streams at once on a 7B on one H200: 72.8 tok/s when ms-swift batched only what was queued
    (its first batch a few requests, the rest waiting a whole answer), 371 with the burst gathered."""
    _, model, adapter = world
    served = plan(DeployRequest(model=str(model), backend="swift"), load_config(search=False))
    argv = spec_of(served.invocation)["argv"]
    assert flag(argv, "--max_batch_size") == "16"
    plugin = Path(flag(argv, "--external_plugins"))
    assert plugin.name == "serve_batching.py" and plugin.is_file()
    assert served.invocation.env["STYLEWRAP_BATCH_WINDOW_MS"] == "20"
    # an unmerged adapter: one at a time, the gathering plugin still loaded (harmless with one)
    with_adapter = spec_of(plan(DeployRequest(model=str(model), adapter=adapter, backend="swift"),
                                load_config(search=False)).invocation)["argv"]
    assert flag(with_adapter, "--max_batch_size") == "1"
    tuned = plan(DeployRequest(model=str(model), backend="swift", extra_args={"external_plugins": ["/x/mine.py"]}),
                 load_config(search=False, overrides=["deploy.batch_size=8", "deploy.batch_window_ms=0"]))
    argv = spec_of(tuned.invocation)["argv"]
    assert flag(argv, "--max_batch_size") == "8" and tuned.invocation.env["STYLEWRAP_BATCH_WINDOW_MS"] == "0"
    plugins = argv[argv.index("--external_plugins") + 1:argv.index("--external_plugins") + 3]
    assert plugins == [str(plugin), "/x/mine.py"] and argv.count("--external_plugins") == 1
    # LLaMA-Factory's transformers engine has no batching: nothing added (its MAX_CONCURRENT=16 measured
    # 0.61x the aggregate of one at a time: 16 generate threads fight over one GPU and one GIL)
    lf = spec_of(plan(DeployRequest(model=str(model), backend="llamafactory"), load_config(search=False)).invocation)["argv"]
    assert "--max_batch_size" not in lf and "--external_plugins" not in lf


def test_a_batch_asked_for_an_unmerged_swift_adapter_is_one_line_and_exit_2(world):
    tmp_path, model, adapter = world
    result = run_stylewrap("deploy", "--model", str(model), "--adapter", str(adapter), "--backend", "swift",
                           "--dry-run", "--set", "deploy.batch_size=4", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "deploy.batch_size" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_the_page_and_chat_call_a_model_tuned_only_when_it_is(world, monkeypatch):
    """A model folder served alone was labelled "tuned" on the web page; a run's or an adapter's weights are."""
    from stylewrap.serve.chat import resolve_endpoint

    tmp_path, model, adapter = world
    config = load_config(search=False)
    swift = plan(DeployRequest(model=str(model), adapter=adapter, backend="swift", port=8123), config).record
    assert swift.model_roles() == {"default-lora": "tuned", "qwen2-7b-instruct": "base"}
    factory = plan(DeployRequest(model=str(model), adapter=adapter, backend="llamafactory", port=8124), config).record
    assert factory.model_roles() == {"default-lora": "tuned"}
    alone = plan(DeployRequest(model=str(model), backend="llamafactory", port=8125), config).record
    assert alone.model_roles() == {}
    # what `stylewrap app` hands the page comes from the server's record
    monkeypatch.setattr("stylewrap.serve.deploy.known_server", lambda *args: alone)
    assert resolve_endpoint(None, None, None).roles == {}
    monkeypatch.setattr("stylewrap.serve.deploy.known_server", lambda *args: swift)
    assert resolve_endpoint(None, None, None).roles == {"default-lora": "tuned", "qwen2-7b-instruct": "base"}
    # a record written before roles were kept: by position, as then
    old = servers.ServerRecord(**{k: v for k, v in servers.asdict(swift).items() if k != "roles"})
    assert old.model_roles() == swift.model_roles()


def test_a_server_record_from_a_newer_stylewrap_is_read(tmp_path, monkeypatch):
    """A field this version does not know (a newer stylewrap wrote the record) is left out, not fatal:
    `deploy status` and `chat` keep working while two versions share a machine."""
    import json

    from stylewrap.serve import servers

    monkeypatch.setattr(servers, "record_path", lambda port: tmp_path / f"{port}.json")
    tmp_path.joinpath("8123.json").write_text(json.dumps({"pid": 1, "host": "127.0.0.1", "port": 8123, "backend": "swift", "models": ["m"],
                                                         "log_file": "x.log", "command": "swift deploy", "a_field_from_the_future": 1}))
    assert servers.load_record(8123).port == 8123
