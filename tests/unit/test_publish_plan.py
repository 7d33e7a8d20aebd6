"""Planning a publish: which files go up, what is rewritten, what the scan refuses. No network."""

from __future__ import annotations

import json

import pytest

from fakekeys import aws_access_key_id, huggingface_token, modelscope_token, openai_key, private_key_header, random_text
from runfixture import make_run_dir, write_safetensors

from stylewrap.config import PublishConfig
from stylewrap.errors import DataError, InputError, RunFailed
from stylewrap.publish.card import dataset_file_stats
from stylewrap.publish.hub import _retrying
from stylewrap.publish.plan import PlannedFile, UploadPlan, plan_dataset, plan_model
from stylewrap.publish.scan import scan_for_secrets

SECRET = modelscope_token(61)
CONFIG = PublishConfig()


@pytest.fixture
def run_dir(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    return make_run_dir(tmp_path, base_model=base, planted_secret=SECRET)


def test_only_what_a_user_needs_goes_up(run_dir):
    plan = plan_model(run_dir, "alice/m", CONFIG, base_model_id="Qwen/Qwen2-0.5B-Instruct")
    assert [f.path_in_repo for f in plan.files] == [
        "adapter_config.json", "adapter_model.safetensors", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json", "assets/loss.png", "README.md", "configuration.json",
    ]
    reasons = {s.path: s.reason for s in plan.skipped}
    assert reasons["checkpoint-10/"] == "intermediate checkpoint"
    assert reasons[".env"].startswith("environment file")
    assert reasons[".cache/"] == "cache"
    assert reasons["training_args.bin"].startswith("training state")
    assert reasons["README.md"] == "replaced by the one stylewrap generates"
    assert plan.private is True and plan.total_size == sum(f.size for f in plan.files)


def test_a_local_base_path_needs_a_hub_id(run_dir):
    with pytest.raises(InputError) as err:
        plan_model(run_dir, "alice/m", CONFIG)
    assert "adapter_config.json" in str(err.value) and "base_model_name_or_path" in str(err.value)
    assert "--base-model-id" in str(err.value)
    plan = plan_model(run_dir, "alice/m", PublishConfig(base_model_id="Qwen/Qwen2-0.5B-Instruct"))
    rewritten = json.loads(plan.file("adapter_config.json").content)
    assert rewritten["base_model_name_or_path"] == "Qwen/Qwen2-0.5B-Instruct"
    assert rewritten["r"] == 8 and rewritten["target_modules"] == ["q_proj"]


def test_merged_needs_an_export(run_dir):
    with pytest.raises(InputError, match="no merged weights.*stylewrap export"):
        plan_model(run_dir, "alice/m", CONFIG, variant="merged")


def test_a_plain_model_folder_without_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="no model weights"):
        plan_model(tmp_path, "alice/m", CONFIG)
    write_safetensors(tmp_path / "model.safetensors", {"w": (2, 2)})
    plan = plan_model(tmp_path, "alice/m", CONFIG)
    card = plan.file("README.md").content.decode()
    assert "full weights" in card and "## Training\n" not in card


@pytest.mark.parametrize("leak, kind", [
    (f"OPENAI_API_KEY={openai_key(62)}".encode(), "an OpenAI-style API key"),
    (private_key_header().encode(), "a Private Key"),
    (f'{{"api_key": "{random_text(63, 19)}"}}'.encode(), "a secret assignment"),
    (huggingface_token(64).encode(), "a Hugging Face token"),
])
def test_key_like_strings_are_refused_with_their_line(tmp_path, leak, kind):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"line one\nline two\n" + leak + b"\n")
    plan = UploadPlan("alice/m", "model", True, "mit", [PlannedFile("notes.txt", path.stat().st_size, source=path)])
    with pytest.raises(InputError) as err:
        scan_for_secrets(plan)
    assert f"{path}:3:" in str(err.value) and kind in str(err.value)
    assert leak.decode() not in str(err.value)


def test_the_scan_passes_clean_tokenizers_and_weights(run_dir):
    plan = plan_model(run_dir, "alice/m", CONFIG, base_model_id="Qwen/Qwen2-0.5B-Instruct")
    scan_for_secrets(plan, extra_secrets=[SECRET])


def test_a_secret_env_value_is_found_across_chunk_borders(tmp_path, monkeypatch):
    import stylewrap.publish.plan as publish

    monkeypatch.setattr(publish, "SCAN_CHUNK", 64)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plain-looking-value-42")
    data = b"x" * 60 + b"plain-looking-value-42" + b"y" * 100
    plan = UploadPlan("alice/m", "model", True, "mit", [PlannedFile("a.bin", len(data), content=data)])
    with pytest.raises(InputError, match="value of a secret environment variable"):
        scan_for_secrets(plan)


def test_dataset_plan_counts_rows_and_keeps_secrets_home(tmp_path, shared_data):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "dialogues.jsonl").symlink_to(shared_data / "tsldial" / "2_Dialogues.jsonl")
    (folder / "sub").mkdir()
    (folder / "sub" / "alpaca.json").symlink_to(shared_data / "llamafactory" / "alpaca_zh_demo.json")
    (folder / ".env").write_text("X=1\n")
    (folder / "weights.bin").write_bytes(b"\0")
    plan = plan_dataset(folder, "alice/d", CONFIG)
    assert [f.path_in_repo for f in plan.files] == ["dialogues.jsonl", "sub/alpaca.json", "README.md"]
    assert {s.path for s in plan.skipped} == {".env", "weights.bin"}
    card = plan.file("README.md").content.decode()
    assert "| `dialogues.jsonl` | the training file | qa | 12000 |" in card and "| `sub/alpaca.json` |  | alpaca | 1000 |" in card
    assert "No generation manifest" in card and plan.commit_message == "Upload 13000 rows with stylewrap"


def test_dataset_file_stats_reads_each_format(tmp_path, shared_data):
    stats = dataset_file_stats(shared_data / "llamafactory" / "v1_sft_demo.jsonl", "v1.jsonl")
    assert stats.format == "messages" and stats.rows and stats.rows > 0
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text('q,a\n"multi\nline",x\nb,y\n')
    assert dataset_file_stats(csv_path, "rows.csv").rows == 2


def test_retries_back_off_then_give_up():
    from modelscope_hub.errors import ServerError

    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        raise ServerError("HTTP 502 on POST /api/v1/models")

    config = PublishConfig(max_retries=3, retry_backoff=1.0)
    with pytest.raises(RunFailed, match="creating failed after 3 attempts"):
        _retrying("creating", flaky, config, report=lambda _m: None, sleep=sleeps.append)
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_auth_errors_are_not_retried():
    from modelscope_hub.errors import AuthenticationError

    calls = []

    def denied():
        calls.append(1)
        raise AuthenticationError("invalid token")

    with pytest.raises(AuthenticationError):
        _retrying("checking", denied, CONFIG, report=lambda _m: None, sleep=lambda _s: None)
    assert len(calls) == 1


def test_safetensors_headers_are_scanned_and_their_data_searched_for_known_secrets(tmp_path, monkeypatch):
    weights = write_safetensors(tmp_path / "adapter_model.safetensors", {"w": (4, 4)})
    data = bytearray(weights.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    planned = PlannedFile("adapter_model.safetensors", len(data), source=weights)
    plan = UploadPlan("alice/m", "model", True, "mit", [planned])
    scan_for_secrets(plan)

    # a key-like string in the tensor bytes is noise by format; a known secret value is not
    leaked = openai_key(65)
    data[header_end:header_end + len(leaked)] = leaked.encode()
    weights.write_bytes(bytes(data))
    scan_for_secrets(plan)
    monkeypatch.setenv("LEAKED_ACCESS_TOKEN", leaked)
    with pytest.raises(InputError, match="value of a secret environment variable"):
        scan_for_secrets(plan)
    monkeypatch.delenv("LEAKED_ACCESS_TOKEN")

    # metadata lives in the header, where key patterns are looked for
    header = data[8:header_end].replace(b'"format":"pt"', f'"format":"pt","note":"{aws_access_key_id(66)}"'.encode())
    header += b" " * (-len(header) % 8)
    weights.write_bytes(len(header).to_bytes(8, "little") + bytes(header) + bytes(data[header_end:]))
    with pytest.raises(InputError, match="an AWS Access Key"):
        scan_for_secrets(plan)


def test_a_broken_row_stops_a_dataset_publish_with_its_line(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"问": "a", "答": "b"}\n{"问": "c", "答": "d"\n')
    with pytest.raises(DataError) as err:
        plan_dataset(data, "alice/d", CONFIG)
    assert f"{data}:2" in str(err.value)


def test_non_record_json_is_published_without_a_row_count(tmp_path, shared_data):
    stats = dataset_file_stats(shared_data / "llamafactory" / "dataset_info.json", "dataset_info.json")
    assert stats.rows is None and stats.format == "json"


def test_a_merged_card_without_a_hub_id_names_the_base_folder_not_its_path(tmp_path):
    base = tmp_path / "home" / "someone" / "Qwen2-0.5B-Instruct"
    base.mkdir(parents=True)
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret=SECRET, with_merged=True)
    card = plan_model(run_dir, "alice/m", CONFIG).file("README.md").content.decode()
    assert "Qwen2-0.5B-Instruct" in card and "someone" not in card and str(tmp_path) not in card
    assert "base_model:" not in card.split("---")[1], "no hub id, no base_model metadata"


def test_an_unfinished_run_is_not_published(run_dir):
    from stylewrap.rundir import RunInfo

    run = RunInfo.load(run_dir)
    run.status = "failed"
    run.save(run_dir)
    with pytest.raises(InputError, match=r"run.json: status: the run has not succeeded \(status: failed\)"):
        plan_model(run_dir, "alice/m", CONFIG, base_model_id="Qwen/Qwen2-0.5B-Instruct")
    plan = plan_model(run_dir / "output", "alice/m", CONFIG, base_model_id="Qwen/Qwen2-0.5B-Instruct")
    assert plan.file("adapter_model.safetensors") is not None


def test_the_card_shows_the_command_as_a_reader_would_type_it():
    from stylewrap.publish.card import card_command

    assert card_command("cd /runs/r1 && PATH=/envs/swift/bin:/usr/bin PYTHONUNBUFFERED=1 "
                        "/envs/swift/bin/swift sft config/train.yaml") == "swift sft config/train.yaml"
    assert card_command("cd /r && FORCE_TORCHRUN=1 NNODES=2 /v/bin/llamafactory-cli train 'config/a b.yaml'") \
        == "FORCE_TORCHRUN=1 NNODES=2 llamafactory-cli train 'config/a b.yaml'"
