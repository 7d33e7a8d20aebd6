"""Publishing as the SWIFT tutorial asks (a model card with the training command and the dataset
link), through the console script with --dry-run: no hub, no SDK."""

from __future__ import annotations

import json
import shutil

from console import run_stylewrap
from fakekeys import modelscope_token
from runfixture import make_run_dir

from stylewrap.config import PublishConfig
from stylewrap.publish.ledger import record_published
from stylewrap.publish.plan import plan_model

BASE_ID = "Qwen/Qwen2-7B-Instruct"


def datagen_folder(root):
    folder = root / "generated"
    folder.mkdir()
    (folder / "topics.jsonl").write_text('{"topic": "天气"}\n{"topic": "电影"}\n', encoding="utf-8")
    plain = {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "你好。"}]}
    styled = {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "嗟乎！你好啊。"}]}
    (folder / "dialogues.jsonl").write_text(json.dumps(plain, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "stylized.jsonl").write_text(json.dumps(styled, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "train.jsonl").write_text((json.dumps(styled, ensure_ascii=False) + "\n") * 2, encoding="utf-8")
    (folder / "errors.jsonl").write_text('{"id": "x", "reason": "garbage"}\n', encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({
        "status": "complete", "preset": "classical", "teacher_model": "teacher-1",
        "files": {"topics": "topics.jsonl", "dialogues": "dialogues.jsonl", "stylize": "stylized.jsonl",
                  "errors": "errors.jsonl", "train": "train.jsonl"}}), encoding="utf-8")
    return folder


def card_of(stdout: str) -> str:
    start = stdout.index("--- README.md")
    return stdout[start:stdout.index("--- end of README.md")]


def test_a_datagen_folder_sends_its_training_file_and_manifest_and_the_card_says_which_is_which(tmp_path):
    folder = datagen_folder(tmp_path)
    result = run_stylewrap("publish", "dataset", folder, "--repo", "alice/classical", "--dry-run", cwd=tmp_path,
                           env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    table = result.stdout[:result.stdout.index("--- README.md")]
    assert "train.jsonl" in table and "manifest.json" in table
    assert "3 files," in table                       # train.jsonl, manifest.json, README.md
    assert "datagen stage (stylize), not training rows: --stages uploads it" in table   # left out, with the flag
    card = card_of(result.stdout)
    assert "| `train.jsonl` | the training file |" in card and "2 rows" in card

    result = run_stylewrap("publish", "dataset", folder, "--repo", "alice/classical", "--stages", "--dry-run",
                           cwd=tmp_path, env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    card = card_of(result.stdout)
    assert "| `stages/stylized.jsonl` | datagen stage: stylize |" in card
    assert "2 rows" in card                                  # the stages are no extra training rows
    assert 'data_files="train.jsonl"' in card and "| `stages/errors.jsonl`" not in card


def test_the_model_card_retrains_from_the_published_dataset_and_the_hub_base(tmp_path):
    base = tmp_path / "Qwen2-7B-Instruct"
    base.mkdir()
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret=modelscope_token(3))
    folder = datagen_folder(tmp_path)
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    info["dataset"] = {"name": "stylewrap_style", "format": "sharegpt", "rows": 2, "source": str(folder / "train.jsonl")}
    (run_dir / "run.json").write_text(json.dumps(info), encoding="utf-8")
    cache = tmp_path / "cache"
    env = {"COLUMNS": "250", "STYLEWRAP_CACHE_DIR": str(cache)}
    # `publish dataset` of the training file recorded it (by content); done here without a hub
    shutil.copy(folder / "train.jsonl", tmp_path / "moved.jsonl")
    cache.mkdir()
    import os
    os.environ["STYLEWRAP_CACHE_DIR"] = str(cache)
    try:
        record_published("alice/classical", [tmp_path / "moved.jsonl"])
    finally:
        del os.environ["STYLEWRAP_CACHE_DIR"]
    result = run_stylewrap("publish", "model", run_dir, "--repo", "alice/guwen", "--base-model-id", BASE_ID,
                           "--dry-run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    card = card_of(result.stdout)
    assert "[alice/classical](https://modelscope.cn/datasets/alice/classical)" in card   # no --dataset-repo given
    assert "train_file: alice/classical" in card and f"model: {BASE_ID}" in card
    assert "backend: llamafactory" in card and "stylewrap train" in card
    assert str(base) not in card and str(tmp_path) not in card


def test_publish_a_chosen_checkpoint(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret=modelscope_token(4))
    shutil.copy(run_dir / "output" / "adapter_config.json", run_dir / "output" / "checkpoint-10" / "adapter_config.json")
    result = run_stylewrap("publish", "model", run_dir, "--repo", "alice/guwen", "--base-model-id", BASE_ID,
                           "--checkpoint", "10", "--dry-run", cwd=tmp_path, env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    assert "| Weights | checkpoint-10 (chosen, not the last) |" in card_of(result.stdout)
    plan = plan_model(run_dir, "alice/guwen", PublishConfig(), base_model_id=BASE_ID, checkpoint="10")
    assert plan.file("adapter_model.safetensors").source == run_dir / "output" / "checkpoint-10" / "adapter_model.safetensors"
    result = run_stylewrap("publish", "model", run_dir, "--repo", "alice/guwen", "--base-model-id", BASE_ID,
                           "--checkpoint", "30", "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and "no checkpoint-30 in this run (kept: 10)" in result.stderr
