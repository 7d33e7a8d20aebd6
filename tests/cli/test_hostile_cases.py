"""Twenty more hostile cases, tried as an adversary and a careless user would, through the
installed console script: the data layer, datagen against a misbehaving teacher, the servers'
records and the app, publish. Each names what must hold."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console import run_stylewrap
from fakekeys import openai_key
from fakeopenai import FakeServer

TURNS = [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "噢，亲爱的朋友！"}]


def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir(exist_ok=True)
    return tmp_path


def sharegpt(path: Path, rows: int = 3) -> Path:
    path.write_text("".join(json.dumps({"conversations": TURNS, "n": n}, ensure_ascii=False) + "\n" for n in range(rows)),
                    encoding="utf-8")
    return path


def refused(done, *needles: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


# ------------------------------------------------------------------ the data layer


def test_01_convert_onto_its_own_input_is_refused_and_the_input_kept(tmp_path):
    source = sharegpt(project(tmp_path) / "rows.jsonl")
    before = source.read_bytes()
    refused(run_stylewrap("data", "convert", source, "--to", "messages", "-o", source, cwd=tmp_path), "overwrite the input")
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    refused(run_stylewrap("data", "convert", source, "--to", "messages", "-o", link, cwd=tmp_path), "overwrite the input")
    assert source.read_bytes() == before


def test_02_a_device_or_fifo_is_refused_not_read_for_ever(tmp_path):
    project(tmp_path)
    fifo = tmp_path / "rows.jsonl"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        refused(run_stylewrap("data", "validate", path, cwd=tmp_path, timeout=60), "not a regular file")


def test_03_an_empty_dataset_name_is_refused(tmp_path):
    source = sharegpt(project(tmp_path) / "rows.jsonl")
    refused(run_stylewrap("data", "register", source, "--backend", "llamafactory", "--dataset-dir", tmp_path, "--name", " ",
                          cwd=tmp_path), "name")
    assert not (tmp_path / "dataset_info.json").exists()


def test_04_a_registry_with_a_repeated_name_is_refused_not_rewritten(tmp_path):
    source = sharegpt(project(tmp_path) / "rows.jsonl")
    info = tmp_path / "dataset_info.json"
    text = '{\n  "a": {"file_name": "x.json"},\n  "a": {"file_name": "y.json"}\n}\n'
    info.write_text(text, encoding="utf-8")
    refused(run_stylewrap("data", "register", source, "--backend", "llamafactory", "--dataset-dir", tmp_path, "--name", "s",
                          cwd=tmp_path), f"{info}:3", "duplicate key 'a'")
    assert info.read_text(encoding="utf-8") == text


def test_05_ten_thousand_deep_nesting_is_a_row_problem(tmp_path):
    path = project(tmp_path) / "rows.jsonl"
    path.write_text(json.dumps({"conversations": TURNS}) + "\n" + '{"x": ' + "[" * 10000 + "]" * 10000 + "}\n", encoding="utf-8")
    refused(run_stylewrap("data", "validate", path, cwd=tmp_path), f"{path}:2")


def test_06_a_json_array_with_trailing_garbage_names_its_line(tmp_path):
    path = project(tmp_path) / "rows.json"
    path.write_text(json.dumps([{"conversations": TURNS}], indent=1) + "\n{oops}\n", encoding="utf-8")
    done = run_stylewrap("data", "validate", path, cwd=tmp_path)
    refused(done, "text after the closing ']'")


def test_07_sample_with_a_negative_count_is_refused(tmp_path):
    source = sharegpt(project(tmp_path) / "rows.jsonl")
    refused(run_stylewrap("data", "sample", source, "-n", "-3", "-o", tmp_path / "s.jsonl", cwd=tmp_path))
    assert not (tmp_path / "s.jsonl").exists()


# ------------------------------------------------------------------ datagen against a misbehaving teacher


@pytest.fixture(scope="module")
def teacher():
    server = FakeServer()
    yield server
    server.stop()


def plain(folder: Path, count: int = 2) -> Path:
    path = folder / "plain.jsonl"
    path.write_text("".join(json.dumps({"问": f"问题{n}？", "答": f"回答{n}。"}, ensure_ascii=False) + "\n" for n in range(count)),
                    encoding="utf-8")
    return path


def stylize(teacher, folder: Path, *extra: str, out: str = "out"):
    return run_stylewrap("datagen", "stylize", "-i", plain(folder), "-o", out, "--base-url", teacher.base_url, "--model",
                         "teacher-1", "--quiet", "--timeout", "5", "--max-retries", "1", *extra, cwd=folder,
                         env={"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": None, "HOME": str(folder)})


def test_08_output_folder_that_is_a_file_is_refused(teacher, tmp_path):
    folder = project(tmp_path)
    (folder / "out").write_text("not a folder", encoding="utf-8")
    teacher.script()
    refused(stylize(teacher, folder), "out")
    assert (folder / "out").read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize("fault", ["garbage", "empty", "prose", "python"])
def test_09_bad_replies_never_crash_and_never_pass_as_done(teacher, tmp_path, fault):
    folder = project(tmp_path)
    teacher.script(faults=[fault] * 8)
    done = stylize(teacher, folder, "--max-attempts", "1", "--concurrency", "1")
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    stylized = [json.loads(line) for line in (folder / "out" / "stylized.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in stylized:  # anything recovered kept the question and gained the style
        assert all(m["content"].startswith("噢，亲爱的，") for m in row["messages"] if m["role"] == "assistant")


def test_10_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(teacher, tmp_path):
    folder = project(tmp_path)
    teacher.script(latency=30.0)
    env = {**os.environ, "OPENAI_API_KEY": "test-key", "HOME": str(folder), "STYLEWRAP_DEBUG": ""}
    env.pop("OPENAI_BASE_URL", None)
    first = subprocess.Popen([str(Path(sys.executable).with_name("stylewrap")), "datagen", "stylize", "-i", plain(folder), "-o",
                              "out", "--base-url", teacher.base_url, "--model", "teacher-1", "--quiet"], cwd=folder, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if any(e["stage"] == "stylize" for e in teacher.log()):
                break
            time.sleep(0.1)
        refused(stylize(teacher, folder), "another `stylewrap datagen` run is writing here")
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_11_the_key_never_lands_in_any_output_file(teacher, tmp_path):
    folder = project(tmp_path)
    key = openai_key(88)
    teacher.script(api_key=key, faults=["500", "garbage"])
    done = run_stylewrap("datagen", "stylize", "-i", plain(folder), "-o", "out", "--base-url", teacher.base_url, "--model",
                         "teacher-1", "--quiet", "--max-retries", "0", "--max-attempts", "1", cwd=folder,
                         env={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": None, "HOME": str(folder)})
    assert done.returncode in (0, 1), done.stderr
    for path in (folder / "out").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert key not in done.stdout + done.stderr


# ------------------------------------------------------------------ the servers


def test_12_a_stale_record_without_start_time_never_gets_a_process_killed(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        state = tmp_path / "servers"
        state.mkdir()
        (state / "server-8999.json").write_text(json.dumps({
            "pid": bystander.pid, "host": "127.0.0.1", "port": 8999, "backend": "swift", "models": ["m"],
            "log_file": str(state / "server-8999.log"), "command": "swift deploy"}), encoding="utf-8")
        done = run_stylewrap("deploy", "stop", "--port", "8999", cwd=project(tmp_path), env={"STYLEWRAP_STATE_DIR": str(state)})
        assert "Traceback" not in done.stderr, done.stderr
        time.sleep(0.5)
        assert bystander.poll() is None, "a process stylewrap did not start was killed"
    finally:
        bystander.kill()
        bystander.wait(timeout=30)


def test_13_a_corrupt_record_does_not_break_status(tmp_path):
    state = tmp_path / "servers"
    state.mkdir()
    (state / "server-8998.json").write_text("{not json", encoding="utf-8")
    done = run_stylewrap("deploy", "status", cwd=project(tmp_path), env={"STYLEWRAP_STATE_DIR": str(state)})
    assert done.returncode in (0, 2) and "Traceback" not in done.stderr, done.stderr
    assert "server-8998.json" in done.stdout + done.stderr


def test_14_the_app_refuses_an_oversized_body_and_a_path_outside_it(teacher, tmp_path):
    from console import start_stylewrap

    teacher.script()
    app = start_stylewrap("app", "--base-url", teacher.base_url, "--model", "teacher-1", "--port", "0",
                          "--api-key-env", "TEACHER_KEY", cwd=project(tmp_path), env={"TEACHER_KEY": "test-key"})
    try:
        url = app.stdout.readline().split()[3]
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"/?token={token}")
        cookie = connection.getresponse().getheader("Set-Cookie").split(";")[0]
        connection.close()
        for method, path, body in [("POST", "/api/chat", b"x" * (2 << 20)), ("GET", "/../../etc/passwd", None),
                                   ("GET", "/templates/web/chat.html", None)]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(method, path, body=body, headers={"Cookie": cookie, "Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status in (400, 404), (path, response.status)
            assert b"root:" not in response.read()
            connection.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
        app.stdout.close()
        app.stderr.close()


def test_15_chat_with_a_key_named_but_unset_says_so(teacher, tmp_path):
    teacher.script()
    done = run_stylewrap("chat", "--base-url", teacher.base_url, "--model", "teacher-1", "--api-key-env", "NO_SUCH_KEY_VAR",
                         cwd=project(tmp_path), input="hi\n/exit\n", env={"NO_SUCH_KEY_VAR": None})
    refused(done, "NO_SUCH_KEY_VAR")


# ------------------------------------------------------------------ publish


def test_16_a_secret_in_a_file_name_is_refused(tmp_path):
    folder = project(tmp_path) / "data"
    folder.mkdir()
    sharegpt(folder / f"{openai_key(90)}.jsonl")
    done = run_stylewrap("publish", "dataset", folder, "--repo", "alice/d", "--dry-run", cwd=tmp_path)
    refused(done, "refusing to upload")
    assert openai_key(90) not in done.stdout + done.stderr


@pytest.mark.parametrize("repo", ["../evil", "alice/d/extra", "alice/", "al ice/d", "alice/d?x=1"])
def test_17_a_repo_id_that_is_not_owner_slash_name_is_refused(tmp_path, repo):
    folder = project(tmp_path) / "data"
    folder.mkdir()
    sharegpt(folder / "rows.jsonl")
    refused(run_stylewrap("publish", "dataset", folder, "--repo", repo, "--dry-run", cwd=tmp_path), "--repo")


def test_18_a_secret_in_the_manifest_never_reaches_the_card(tmp_path):
    folder = project(tmp_path) / "data"
    folder.mkdir()
    sharegpt(folder / "rows.jsonl")
    (folder / "manifest.json").write_text(json.dumps({"teacher_model": openai_key(91), "settings": {}}), encoding="utf-8")
    done = run_stylewrap("publish", "dataset", folder, "--repo", "alice/d", "--dry-run", cwd=tmp_path)
    refused(done, "refusing to upload")


def test_19_hidden_files_in_subfolders_stay_home(tmp_path):
    folder = project(tmp_path) / "data"
    (folder / "sub").mkdir(parents=True)
    sharegpt(folder / "rows.jsonl")
    (folder / "sub" / ".env").write_text(f"OPENAI_API_KEY={openai_key(92)}\n", encoding="utf-8")
    (folder / ".git-credentials").write_text("https://u:p@example.com\n", encoding="utf-8")
    done = run_stylewrap("publish", "dataset", folder, "--repo", "alice/d", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sub/.env" in done.stdout and ".git-credentials" in done.stdout  # listed as skipped
    assert openai_key(92) not in done.stdout


def test_20_a_secret_split_by_a_json_unicode_escape_is_found(tmp_path):
    folder = project(tmp_path) / "data"
    folder.mkdir()
    key = openai_key(93)
    escaped = key[:10] + "".join(f"\\u{ord(c):04x}" for c in key[10:14]) + key[14:]
    row = json.dumps({"conversations": TURNS}, ensure_ascii=False).replace("噢，亲爱的朋友！", escaped)
    (folder / "rows.jsonl").write_text(row + "\n", encoding="utf-8")
    refused(run_stylewrap("publish", "dataset", folder, "--repo", "alice/d", "--dry-run", cwd=tmp_path), "rows.jsonl:1")
