"""`stylewrap publish` through the real modelscope SDK against a local fake hub (tests/fakehub.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fakekeys import modelscope_token
from fakehub import PRIVATE, PUBLIC, FakeHub
from runfixture import LORA_TENSORS, make_run_dir, read_safetensors_header

from stylewrap.cli import cli
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration

TOKEN = modelscope_token(41)
BASE_ID = "Qwen/Qwen2-0.5B-Instruct"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from modelscope_hub.config import set_default_config

    server = FakeHub(token=TOKEN, username="alice", orgs=("stylewrap-org",)).start()
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", TOKEN)
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", server.url)
    # the SDK keeps credentials and a session id under MODELSCOPE_HOME: never the real ~/.modelscope
    monkeypatch.setenv("MODELSCOPE_HOME", str(tmp_path / "modelscope-home"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "modelscope-cache"))
    # what was published from here (publish/ledger.py): never the real ~/.cache/stylewrap
    monkeypatch.setenv("STYLEWRAP_CACHE_DIR", str(tmp_path / "stylewrap-cache"))
    monkeypatch.setenv("STYLEWRAP_PUBLISH__RETRY_BACKOFF", "0.01")
    set_default_config(None)  # the SDK caches its config per process; re-read the env set above
    yield server
    server.stop()
    set_default_config(None)
    assert server.unexpected == [], f"the SDK made calls the fake hub does not implement: {server.unexpected}"


@pytest.fixture
def run_dir(tmp_path):
    base = tmp_path / "models" / "qwen2-tiny"
    base.mkdir(parents=True)
    return make_run_dir(tmp_path, base_model=base, planted_secret=TOKEN)


def publish(*args: str):
    result = CliRunner().invoke(cli, ["publish", *args], catch_exceptions=False)
    return result


def test_model_goes_up_private_with_its_card_and_nothing_else(hub, run_dir):
    result = publish("model", str(run_dir), "--repo", "alice/guwen-lora", "--base-model-id", BASE_ID)
    assert result.exit_code == 0, result.output

    repo = hub.repo("model", "alice/guwen-lora")
    assert repo.visibility == PRIVATE
    first_create = json.loads(hub.calls("POST", r"^/api/v1/models$")[0].body)
    assert first_create["Visibility"] == PRIVATE and first_create["License"] == "apache-2.0"
    assert sorted(repo.files) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "assets/loss.png", "configuration.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]
    local_weights = (run_dir / "output" / "adapter_model.safetensors").read_bytes()
    assert repo.files["adapter_model.safetensors"] == local_weights
    assert set(read_safetensors_header(repo.files["adapter_model.safetensors"])) - {"__metadata__"} == set(LORA_TENSORS)
    assert hub.calls("PUT", r"^/lfs/"), "weights go through the LFS batch + blob upload"
    assert repo.files["assets/loss.png"] == (run_dir / "loss.png").read_bytes()
    assert json.loads(repo.files["adapter_config.json"])["base_model_name_or_path"] == BASE_ID
    assert json.loads(repo.files["configuration.json"])["framework"] == "pytorch"

    card = repo.files["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == [BASE_ID] and meta["base_model_relation"] == "adapter"
    assert meta["datasets"] == {"train": ["alice/guwen-style"]} and meta["license"] == "apache-2.0"
    assert "```shell\nllamafactory-cli train config/train.yaml\n```" in card and "PATH=" not in card
    assert "finetuning_type: lora" in card and f"model_name_or_path: {BASE_ID}" in card
    assert "llamafactory 0.9.5" in card and "| learning_rate | 0.0001 |" in card
    assert "](https://modelscope.cn/datasets/alice/guwen-style)" in card
    assert "![training loss](assets/loss.png)" in card
    assert "我听说，在浩瀚的宇宙中，我不过是一粒尘埃罢了！" in card and "130+3445等于多少？" in card
    assert "空回答不进卡片" not in card and "system prompt: “你是一个用古文翻译腔回复的模型”" in card
    assert "Intended use and limits" in card
    assert str(run_dir) not in card and str(run_dir.parent) not in card
    assert f"| model | {BASE_ID} |" in card and "| dataset_dir | $RUN_DIR/data |" in card
    assert "| system | 你是一个用古文翻译腔回复的模型，<br>回复要\\|有腔调 |" in card, "a table cell stays one cell"

    sent = hub.sent_bytes()
    assert TOKEN.encode() not in sent
    for leftover in (b"optimizer-state", b"rng-state", b"pickled-args", b"peft's placeholder card", b"step 10 loss"):
        assert leftover not in sent
    recorded = RunInfo.load(run_dir).extra["published"]
    assert recorded[0]["repo"] == "alice/guwen-lora" and recorded[0]["private"] is True
    assert "created (private)" in result.output


def test_merged_model_and_public_flag(hub, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret=TOKEN, with_merged=True)
    result = publish("model", str(run_dir), "--merged", "--public", "--repo", "stylewrap-org/guwen", "--license", "mit")
    assert result.exit_code == 0, result.output
    repo = hub.repo("model", "stylewrap-org/guwen")
    assert repo.visibility == PUBLIC and repo.license == "mit"
    assert sorted(repo.files) == ["README.md", "assets/loss.png", "config.json", "configuration.json",
                                  "model.safetensors", "tokenizer_config.json"]
    card = repo.files["README.md"].decode()
    assert "swift infer --model stylewrap-org/guwen" in card and "license: mit" in card


def test_injected_server_errors_are_retried(hub, run_dir):
    hub.fail("POST", r"^/api/v1/models$", status=500, times=2)   # our retry: the SDK never retries a POST create
    hub.fail("POST", r"/commit/master$", status=503, times=1)    # the SDK's own commit retry
    hub.fail("GET", r"^/openapi/v1/users/me$", status=502, times=1)
    result = publish("model", str(run_dir), "--repo", "alice/retry", "--base-model-id", BASE_ID)
    assert result.exit_code == 0, result.output
    assert len(hub.calls("POST", r"^/api/v1/models$")) >= 3
    assert len(hub.calls("POST", r"/commit/master$")) == 2
    assert hub.repo("model", "alice/retry").visibility == PRIVATE
    assert "adapter_model.safetensors" in hub.repo("model", "alice/retry").files


def test_a_create_that_went_through_but_failed_is_ours_on_retry(hub, run_dir):
    hub.fail("POST", r"^/api/v1/models$", status=500, times=1, after_handling=True)
    result = publish("model", str(run_dir), "--repo", "alice/half-created", "--base-model-id", BASE_ID)
    assert result.exit_code == 0, result.output
    # the 500 is retried and answers "exists" (then the SDK's upload asks once more, public, exist_ok)
    creates = hub.calls("POST", r"^/api/v1/models$")
    assert [(call.status, json.loads(call.body)["Visibility"]) for call in creates[:2]] == [(500, PRIVATE), (400, PRIVATE)]
    assert "creating the repo: [E1002] [500] injected failure" in result.output
    repo = hub.repo("model", "alice/half-created")
    assert repo.visibility == PRIVATE
    assert "adapter_model.safetensors" in repo.files and len(repo.commits) == 1
    assert "created (private)" in result.output and "taken" not in result.output


def test_a_hub_that_stays_down_is_a_clear_failure(hub, run_dir):
    hub.fail("POST", r"^/api/v1/models$", status=500, times=100)
    result = publish("model", str(run_dir), "--repo", "alice/down", "--base-model-id", BASE_ID,
                     "--set", "publish.max_retries=2")
    assert result.exit_code == 1
    assert "creating the repo failed after 2 attempts" in result.output
    assert "Traceback" not in result.output and TOKEN not in result.output
    assert not hub.calls("POST", r"/commit/")


def test_bad_token_is_an_auth_error(hub, run_dir, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", modelscope_token(43))
    result = publish("model", str(run_dir), "--repo", "alice/x", "--base-model-id", BASE_ID)
    assert result.exit_code == 2
    assert "no valid ModelScope token" in result.output and "MODELSCOPE_API_TOKEN" in result.output
    assert not hub.calls("POST", r"^/api/v1/models$")


def test_no_permission_on_the_owner(hub, run_dir):
    result = publish("model", str(run_dir), "--repo", "bob/guwen", "--base-model-id", BASE_ID)
    assert result.exit_code == 2
    assert "no permission to write to model bob/guwen" in result.output


def test_someone_elses_public_repo_is_not_writable(hub, run_dir):
    hub.add_repo("model", "bob/public-model", visibility=PUBLIC)
    result = publish("model", str(run_dir), "--repo", "bob/public-model", "--base-model-id", BASE_ID)
    assert result.exit_code == 2
    assert "no permission to write to model bob/public-model" in result.output
    assert hub.repo("model", "bob/public-model").files == {}


def test_a_name_taken_by_someone_else_is_a_clash(hub, run_dir):
    hub.add_repo("model", "stylewrap-org/taken", visibility=PRIVATE)
    hub.writable_owners.discard("stylewrap-org")
    result = publish("model", str(run_dir), "--repo", "stylewrap-org/taken", "--base-model-id", BASE_ID)
    assert result.exit_code == 2
    assert "the name stylewrap-org/taken is taken" in result.output
    assert not hub.calls("POST", r"/commit/")


def test_existing_repo_is_updated_and_keeps_its_visibility(hub, run_dir):
    hub.add_repo("model", "alice/existing", visibility=PUBLIC)
    result = publish("model", str(run_dir), "--repo", "alice/existing", "--base-model-id", BASE_ID)
    assert result.exit_code == 0, result.output
    assert "updated (public)" in result.output and "stays public" in result.output
    assert "README.md" in hub.repo("model", "alice/existing").files


def test_a_secret_in_a_file_to_upload_stops_everything(hub, run_dir):
    tokenizer_config = run_dir / "output" / "tokenizer_config.json"
    tokenizer_config.write_text(tokenizer_config.read_text() + f"\n// {TOKEN}\n")
    result = publish("model", str(run_dir), "--repo", "alice/leaky", "--base-model-id", BASE_ID)
    assert result.exit_code == 2
    assert f"{tokenizer_config}:" in result.output and "refusing to upload" in result.output
    assert TOKEN not in result.output
    assert hub.requests == [], "the scan runs before any network call"


def test_dataset_goes_up_with_counts_and_manifest(hub, tmp_path, shared_data):
    """A `stylewrap datagen` output folder: checkpoints, error log, manifest, training file."""
    folder = tmp_path / "generated"
    folder.mkdir()
    (folder / "train.jsonl").symlink_to(shared_data / "tsldial" / "3_TranslationalDialogues.jsonl")
    (folder / "TslDial.json").symlink_to(shared_data / "tsldial" / "TslDial.json")
    topics = (shared_data / "tsldial" / "1_Topics.txt").read_text(encoding="utf-8").split()
    (folder / "topics.jsonl").write_text("".join(json.dumps({"id": i, "topic": t}, ensure_ascii=False) + "\n"
                                                 for i, t in enumerate(topics)), encoding="utf-8")
    (folder / "errors.jsonl").write_text('{"id": 17, "reason": "bad json", "raw": "..."}\n')
    manifest = {"stylewrap_version": "0.1.0", "status": "complete", "preset": "translational",
                "prompts_sha256": "ab12cd34ef", "teacher_model": "gpt-3.5-turbo",
                "stages": {"dialogues": {"requested": 12000, "done": 11743, "errors": 257}},
                "tokens": {"input": 5123456, "output": 2345678}, "cost_usd": 7.5}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / ".env").write_text(f"OPENAI_API_KEY={TOKEN}\n")

    result = publish("dataset", str(folder), "--repo", "alice/tsldial")
    assert result.exit_code == 0, result.output
    repo = hub.repo("dataset", "alice/tsldial")
    assert repo.visibility == PRIVATE
    create = hub.calls("POST", r"^/api/v1/datasets$")[0]
    assert b'name="Visibility"' in create.body and b"\r\n\r\n1\r\n" in create.body
    assert sorted(repo.files) == ["README.md", "TslDial.json", "manifest.json", "topics.jsonl", "train.jsonl"]
    assert repo.files["train.jsonl"] == (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_bytes()
    assert json.loads(repo.files["manifest.json"]) == manifest
    card = repo.files["README.md"].decode()
    assert "| `train.jsonl` | the training file | qa | 11743 |" in card and "| `TslDial.json` |  | alpaca | 11743 |" in card
    assert f"| `topics.jsonl` |  |  | {len(topics)} |" in card
    assert f"{11743 * 2 + len(topics)} rows" in card
    assert "Teacher model: gpt-3.5-turbo" in card and "Style preset: translational" in card
    assert "Prompts hash: `ab12cd34ef`" in card and "[`manifest.json`](manifest.json)" in card
    assert '"ms_dataset_id": "alice/tsldial", "columns": {"问": "query", "答": "response"}' in card
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "apache-2.0"
    assert TOKEN.encode() not in hub.sent_bytes() and b"bad json" not in hub.sent_bytes()


def test_without_a_token_anywhere_says_how_to_get_one(hub, run_dir, monkeypatch):
    monkeypatch.delenv("MODELSCOPE_API_TOKEN")
    result = publish("model", str(run_dir), "--repo", "alice/x", "--base-model-id", BASE_ID)
    assert result.exit_code == 2
    assert "no valid ModelScope token" in result.output and "modelscope login" in result.output


def test_the_token_of_an_sdk_login_is_used_and_kept_out_of_the_upload(hub, run_dir, monkeypatch):
    from modelscope.hub.api import HubApi

    git_token, _cookies = HubApi(endpoint=hub.url).login(TOKEN)   # what `modelscope login` does
    assert git_token == "git-token"
    assert (Path(os.environ["MODELSCOPE_HOME"]) / "credentials" / "cookies").is_file()
    hub.requests.clear()  # the login body carries the token by design; what follows must not
    monkeypatch.delenv("MODELSCOPE_API_TOKEN")
    tokenizer_config = run_dir / "output" / "tokenizer_config.json"
    original = tokenizer_config.read_text()
    tokenizer_config.write_text(original.replace("<|endoftext|>", TOKEN))
    leaky = publish("model", str(run_dir), "--repo", "alice/from-login", "--base-model-id", BASE_ID)
    assert leaky.exit_code == 2 and "refusing to upload" in leaky.output
    tokenizer_config.write_text(original)
    result = publish("model", str(run_dir), "--repo", "alice/from-login", "--base-model-id", BASE_ID)
    assert result.exit_code == 0, result.output
    assert "adapter_model.safetensors" in hub.repo("model", "alice/from-login").files
    assert TOKEN.encode() not in hub.sent_bytes()


def test_the_tiny_model_folder_goes_up_byte_for_byte(hub, tiny_model):
    result = publish("model", str(tiny_model), "--repo", "alice/tiny-qwen2")
    assert result.exit_code == 0, result.output
    repo = hub.repo("model", "alice/tiny-qwen2")
    expected = {p.name for p in tiny_model.iterdir()
                if p.name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                              "tokenizer_config.json", "chat_template.jinja")}
    assert expected >= {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert set(repo.files) == expected | {"README.md", "configuration.json"}
    for name in expected:
        assert repo.files[name] == (tiny_model / name).read_bytes(), name
    card = repo.files["README.md"].decode()
    assert "full weights" in card and "swift infer --model alice/tiny-qwen2" in card
    assert "## Training\n" not in card, "a bare model folder has no run to tell about"


def test_the_fake_hub_rejects_what_it_does_not_understand(hub):
    import requests

    assert requests.get(f"{hub.url}/api/v1/models/alice/x/revisions", timeout=5).status_code == 501
    assert requests.post(f"{hub.url}/api/v1/models", json={"Name": "no-owner"}, timeout=5,
                         headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 400
    assert len(hub.unexpected) == 2
    hub.unexpected.clear()


def test_a_real_swift_run_goes_up(swift_run, hub):
    result = publish("model", str(swift_run), "--repo", "alice/tiny-guwen", "--base-model-id", BASE_ID,
                     "--dataset-repo", "alice/guwen-style")
    assert result.exit_code == 0, result.output
    repo = hub.repo("model", "alice/tiny-guwen")
    adapter = swift_run / RunInfo.load(swift_run).adapter_dir
    assert sorted(repo.files) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                  "additional_config.json", "assets/loss.png", "configuration.json"]
    assert repo.files["adapter_model.safetensors"] == (adapter / "adapter_model.safetensors").read_bytes()
    assert json.loads(repo.files["adapter_config.json"])["base_model_name_or_path"] == BASE_ID
    assert (adapter / "optimizer.pt").is_file() and (adapter / "args.json").is_file(), "left at home, not absent"
    card = repo.files["README.md"].decode()
    assert "```shell\nswift sft config/train.yaml\n```" in card
    assert f"| Backend | swift {RunInfo.load(swift_run).backend_version} |" in card
    assert f"model: {BASE_ID}" in card and str(swift_run.parent) not in card
    assert "swift infer --model Qwen/Qwen2-0.5B-Instruct --adapters alice/tiny-guwen" in card


def test_a_published_training_file_is_linked_from_the_model_card_without_dataset_repo(hub, run_dir, tmp_path):
    data = tmp_path / "generated"
    data.mkdir()
    (data / "train.jsonl").write_text('{"问": "你好", "答": "嗟乎！你好啊。"}\n', encoding="utf-8")
    assert publish("dataset", str(data), "--repo", "alice/guwen-data").exit_code == 0
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    info["dataset"] = {"name": "stylewrap_style", "format": "qa", "rows": 1, "source": str(data / "train.jsonl")}
    (run_dir / "run.json").write_text(json.dumps(info), encoding="utf-8")
    result = publish("model", str(run_dir), "--repo", "alice/guwen", "--base-model-id", BASE_ID)
    assert result.exit_code == 0, result.output
    card = hub.repo("model", "alice/guwen").files["README.md"].decode()
    assert "- On ModelScope: [alice/guwen-data](" in card and "train_file: alice/guwen-data" in card
    assert yaml.safe_load(card.split("---\n")[1])["datasets"] == {"train": ["alice/guwen-data"]}


def test_after_an_upload_the_console_script_names_the_next_step(hub, tmp_path):
    """The installed console script (the hub's address and token reach it through the environment)."""
    import dataclasses

    from console import run_stylewrap

    base = tmp_path / "models" / "qwen2-tiny"
    base.mkdir(parents=True)
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret=TOKEN)
    data = tmp_path / "styled.jsonl"
    data.write_text('{"instruction": "周末做什么？", "output": "噢，亲爱的，去公园跑步吧！"}\n', encoding="utf-8")
    info = RunInfo.load(run_dir)   # a run that trained on a file here, not on a hub dataset
    dataclasses.replace(info, dataset={"name": "styled", "format": "alpaca", "rows": 1, "source": str(data)}).save(run_dir)
    up = run_stylewrap("publish", "model", run_dir, "--repo", "alice/guwen-lora", "--base-model-id", BASE_ID, cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.rstrip().splitlines()[-1] == f"next: stylewrap publish dataset {data}   (the data it was trained " \
                                                  "on; the model card links it once published)"
    up = run_stylewrap("publish", "dataset", data, "--repo", "alice/guwen-style", cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.rstrip().splitlines()[-1] == "next: stylewrap publish model latest   (its card links this dataset)"
    up = run_stylewrap("publish", "model", run_dir, "--repo", "alice/guwen-lora", "--base-model-id", BASE_ID, cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.rstrip().splitlines()[-1].startswith("next: open http")
