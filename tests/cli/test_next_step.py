"""Every step ends by naming the command a user would run next, in one format (`next: ...`, then
`  or: ...`), through the installed console script; and every command it names exists, with the
options it is given (checked against that command's own --help)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from console import run_stylewrap
from fakeopenai import FakeServer
from runfixture import make_run_dir

ROWS = [{"instruction": "周末做什么？", "output": "去公园跑步。"}, {"instruction": "周末做什么？", "output": "去公园跑步。"},
        {"instruction": "晚饭吃什么？", "output": "吃面条。"}]


def next_lines(stdout: str) -> list[str]:
    """The commands after `next:` and `  or:`, their notes in parentheses left out."""
    found = re.findall(r"^(?:next|  or): (.+?)(?:   \(.*\))?$", stdout, flags=re.M)
    assert found and stdout.rstrip().splitlines()[-len(found)].startswith("next: "), stdout
    return found


def assert_runnable(command: str, cwd: Path) -> None:
    """The named command exists and takes every option it is given."""
    words = shlex.split(command)
    assert words[0] == "stylewrap", command
    path = words[1:2]
    help_text = run_stylewrap(*path, "--help", cwd=cwd).stdout
    if "Commands:" in help_text:           # a group: the second word names its command
        path = words[1:3]
        help_text = run_stylewrap(*path, "--help", cwd=cwd).stdout
    assert "Usage: stylewrap " + " ".join(path) in help_text, (command, help_text)
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in help_text, (command, option)


def steps(result, cwd: Path, exit_code: int = 0) -> list[str]:
    assert result.returncode == exit_code, result.stdout + result.stderr
    commands = next_lines(result.stdout)
    for command in commands:
        if command.startswith("stylewrap "):
            assert_runnable(command, cwd)
    return commands


@pytest.fixture
def rows(tmp_path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS), encoding="utf-8")
    return path


def test_data_steps_name_the_next_one(rows, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(rows.read_text() + json.dumps({"instruction": "", "output": "x"}) + "\n")
    assert steps(run_stylewrap("data", "validate", bad, cwd=tmp_path), tmp_path, exit_code=2) == [
        f"stylewrap data validate {bad} --drop-invalid"]
    good = tmp_path / "bad.valid.jsonl"
    assert steps(run_stylewrap("data", "validate", bad, "--drop-invalid", cwd=tmp_path), tmp_path)[0] == \
        f"stylewrap train --set data.train_file={good}"
    # a file with repeated rows: drop them first
    assert steps(run_stylewrap("data", "stats", rows, cwd=tmp_path), tmp_path)[0].startswith(
        f"stylewrap data dedup {rows} -o ")
    deduped = tmp_path / "d.jsonl"
    assert steps(run_stylewrap("data", "dedup", rows, "-o", deduped, cwd=tmp_path), tmp_path) == [
        f"stylewrap train --set data.train_file={deduped}"]
    assert steps(run_stylewrap("data", "stats", deduped, cwd=tmp_path), tmp_path) == [
        f"stylewrap train --set data.train_file={deduped}"]
    converted = tmp_path / "m.jsonl"
    assert steps(run_stylewrap("data", "convert", rows, "--to", "messages", "-o", converted, cwd=tmp_path), tmp_path)[0] \
        == f"stylewrap train --set data.train_file={converted}"
    assert steps(run_stylewrap("data", "split", rows, "--train", "t.jsonl", "--val", "v.jsonl", "--val-size", "1",
                               cwd=tmp_path), tmp_path) == ["stylewrap train --set data.train_file=t.jsonl --set data.val_file=v.jsonl"]
    assert steps(run_stylewrap("data", "sample", rows, "-o", "s.jsonl", "-n", "2", cwd=tmp_path), tmp_path)[0] == \
        "stylewrap data stats s.jsonl --html stats.html --open"
    assert steps(run_stylewrap("data", "register", rows, "--backend", "swift", "--dataset-dir", "reg", "--name", "r",
                               cwd=tmp_path), tmp_path) == [f"stylewrap train --set data.train_file={rows}"]
    assert steps(run_stylewrap("data", "formats", cwd=tmp_path), tmp_path) == ["stylewrap data validate FILE"]


def test_stats_as_json_is_json_alone(rows, tmp_path):
    result = run_stylewrap("data", "stats", rows, "--json", cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["rows"] == 3


def test_pairs_name_preference_tuning(tmp_path):
    chosen, rejected = tmp_path / "styled.jsonl", tmp_path / "plain.jsonl"
    chosen.write_text(json.dumps({"问": "周末做什么？", "答": "噢，亲爱的，去公园跑步吧！"}, ensure_ascii=False) + "\n")
    rejected.write_text(json.dumps({"问": "周末做什么？", "答": "去公园跑步。"}, ensure_ascii=False) + "\n")
    assert steps(run_stylewrap("data", "pairs", "--chosen", chosen, "--rejected", rejected, cwd=tmp_path), tmp_path) == [
        "stylewrap train --method dpo --from-run RUN --set data.pairs_file=pairs.jsonl"]


def test_styles_and_init_name_the_next_step(tmp_path):
    assert steps(run_stylewrap("styles", "list", cwd=tmp_path), tmp_path)[0].startswith("stylewrap styles show ")
    assert steps(run_stylewrap("styles", "show", "classical", cwd=tmp_path), tmp_path) == [
        "stylewrap datagen run --style classical"]
    init = run_stylewrap("init", "my project", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert steps(init, tmp_path) == ["stylewrap run 'my project'", "stylewrap demo"]
    # the keys a user must set are named, and marked in the file
    from stylewrap.config import MUST_SET

    written = (tmp_path / "my project" / "stylewrap.yaml").read_text(encoding="utf-8")
    for key in MUST_SET:
        assert f"  {key}: " in init.stdout
        assert any(key.split(".")[-1] in line and "REQUIRED" in line for line in written.splitlines()), key


def test_publish_names_the_upload_after_a_dry_run(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret="")
    result = run_stylewrap("publish", "model", run_dir, "--repo", "alice/guwen", "--base-model-id", "Qwen/Qwen2-0.5B",
                           "--dry-run", cwd=tmp_path, env={"COLUMNS": "250"})
    assert steps(result, tmp_path) == [f"stylewrap publish model {run_dir} --repo alice/guwen --base-model-id Qwen/Qwen2-0.5B"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(json.dumps(ROWS[0], ensure_ascii=False) + "\n")
    result = run_stylewrap("publish", "dataset", data, "--repo", "alice/d", "--dry-run", cwd=tmp_path)
    assert steps(result, tmp_path) == [f"stylewrap publish dataset {data} --repo alice/d"]


def test_datagen_names_training(tmp_path):
    fake = FakeServer()
    try:
        plain = tmp_path / "plain.jsonl"
        plain.write_text(json.dumps({"问": "周末做什么？", "答": "去公园跑步。"}, ensure_ascii=False) + "\n")
        out = tmp_path / "out"
        teacher = ["--set", f"datagen.base_url={fake.base_url}", "--set", "datagen.teacher_model=teacher-1",
                   "--set", f"datagen.output_dir={out}"]
        env = {"OPENAI_API_KEY": "test-key"}
        assert run_stylewrap("datagen", "stylize", "-i", plain, *teacher, cwd=tmp_path, env=env).returncode == 0
        result = run_stylewrap("datagen", "build", *teacher, cwd=tmp_path, env=env)
        assert steps(result, tmp_path) == ["stylewrap train", "stylewrap data stats FILE --html stats.html --open"]
    finally:
        fake.stop()
