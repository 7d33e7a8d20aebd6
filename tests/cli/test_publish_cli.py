"""`stylewrap publish ... --dry-run`: the file list, sizes and refusals, with no hub at all."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from fakekeys import modelscope_token, openai_key
from runfixture import make_run_dir

from stylewrap.cli import cli
from stylewrap.config import PublishConfig
from stylewrap.publish.plan import plan_model

SECRET = modelscope_token(21)


def test_dry_run_lists_files_and_sizes_and_never_imports_the_sdk(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret=SECRET)
    code = (
        "import sys\nfrom stylewrap.cli import cli\n"
        "try:\n    cli.main(sys.argv[1:], prog_name='stylewrap')\nexcept SystemExit as e:\n    code = e.code\n"
        "print('SDK-IMPORTED' if 'modelscope' in sys.modules else 'NO-SDK')\n"
    )
    args = ["publish", "model", str(run_dir), "--repo", "alice/guwen", "--base-model-id", "Qwen/Qwen2-0.5B-Instruct",
            "--dry-run"]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)}).stdout
    assert "NO-SDK" in out
    plan = plan_model(run_dir, "alice/guwen", PublishConfig(), base_model_id="Qwen/Qwen2-0.5B-Instruct")
    assert f"{len(plan.files)} files" in out and f"({plan.total_size} bytes)" in out
    assert "adapter_model.safetensors" in out and "4.3 KiB" in out  # 2 x 512 float32 + header
    assert "checkpoint-10/" in out and "intermediate checkpoint" in out
    assert "dry run: nothing uploaded" in out and "model alice/guwen (private)" in out


def test_dry_run_refuses_a_leaking_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    data = tmp_path / "rows.jsonl"
    data.write_text(f'{{"问": "你好", "答": "噢，亲爱的，key {openai_key(22)} 给你"}}\n')
    result = CliRunner().invoke(cli, ["publish", "dataset", str(data), "--repo", "alice/d", "--dry-run"])
    assert result.exit_code == 2
    assert f"{data}:1: refusing to upload" in result.output and "OpenAI-style API key" in result.output


def test_repo_is_required_and_checked(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"问": "a", "答": "b"}\n')
    result = CliRunner().invoke(cli, ["publish", "dataset", str(data), "--dry-run"])
    assert result.exit_code == 2 and "no dataset repo given" in result.output
    result = CliRunner().invoke(cli, ["publish", "dataset", str(data), "--repo", "not a repo", "--dry-run"])
    assert result.exit_code == 2 and "is not OWNER/NAME" in result.output
    result = CliRunner().invoke(cli, ["publish", "dataset", str(data), "--dry-run", "--set", "publish.dataset_repo=alice/d"])
    assert result.exit_code == 0, result.output
