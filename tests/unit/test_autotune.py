"""How stylewrap fills the unset training settings from the GPU, the model and the data."""

from __future__ import annotations

import json

import pytest

from stylewrap.backends.autotune import (GIB, Gpu, Hardware, activation_bytes_per_token, detect_hardware,
                                         longest_row_tokens, plan_memory, query_nvidia_smi, static_bytes, tune)
from stylewrap.backends.base import get_backend
from stylewrap.backends.modelinfo import ModelShape, model_family
from stylewrap.config import TrainConfig

QWEN25_7B = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False}
H200 = Hardware((Gpu("NVIDIA H200", 140.0, True),))


@pytest.fixture
def qwen7b(tmp_path):
    folder = tmp_path / "Qwen2.5-7B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN25_7B), encoding="utf-8")
    return ModelShape.of(str(folder))


def _tune(train=None, hardware=H200, shape=None, installed=("liger-kernel",), backend="llamafactory", processes=1,
          longest=205):
    asked = []

    def row_tokens():
        asked.append(True)
        return longest

    tuning = tune(train or TrainConfig(), hardware=hardware, shape=shape, installed=installed, backend=get_backend(backend),
                  processes_per_node=processes, nodes=1, row_tokens=row_tokens)
    return tuning, bool(asked)


def test_the_shape_is_read_from_config_json(qwen7b):
    assert (qwen7b.layers, qwen7b.hidden, qwen7b.intermediate, qwen7b.vocab) == (28, 3584, 18944, 152064)
    assert qwen7b.params == pytest.approx(7.62e9, rel=0.01)   # Qwen2.5-7B: 7.61B


def test_memory_model_matches_what_the_h200_measured(qwen7b):
    # bench/gpu: 58 GiB peak at 8 packed rows of 1,024 tokens, 102.1 GiB at 16, LoRA on all linear
    # layers with Liger, no checkpointing: 14 GiB of weights and 5.5 GiB per 1k tokens
    per_token = activation_bytes_per_token(qwen7b, checkpointing=False, liger=True, lora_dropout=0.0, lora=True)
    weights = static_bytes(qwen7b, "lora", None, None, 1)
    for rows, measured_gib in ((8, 58.0), (16, 102.1)):
        assert (weights + rows * 1024 * per_token) / GIB == pytest.approx(measured_gib, rel=0.05)
    # checkpointing keeps a small fraction; the logits without Liger and LoRA dropout cost extra
    assert activation_bytes_per_token(qwen7b, checkpointing=True, liger=True, lora_dropout=0.0, lora=True) < per_token / 10
    assert activation_bytes_per_token(qwen7b, checkpointing=False, liger=False, lora_dropout=0.0, lora=True) > per_token
    assert activation_bytes_per_token(qwen7b, checkpointing=False, liger=True, lora_dropout=0.05, lora=True) > per_token


def test_one_h200_and_a_7b_get_the_measured_fast_settings(qwen7b):
    tuning, asked = _tune(shape=qwen7b)
    assert tuning.values == {"dtype": "bf16", "attention": "sdpa", "liger_kernel": True, "packing": True,
                             "dataloader_num_workers": 4, "gradient_checkpointing": False,
                             "per_device_train_batch_size": 16, "gradient_accumulation_steps": 1}
    assert not asked, "packed rows are cutoff_len long: no need to measure the data"
    assert tuning.notes[0] == "stylewrap chose these for 1 x NVIDIA H200, 140.0 GiB free each (nvidia-smi):"
    assert len(tuning.notes) == 1 + len(tuning.values)


def test_swift_without_flash_attn_packs_through_torchs_varlen_kernel(qwen7b):
    tuning, asked = _tune(shape=qwen7b, backend="swift", installed={"liger-kernel": "0.8.5", "torch": "2.11.0+cu130"})
    assert not asked
    assert tuning.values["attention"] == "varlen" and tuning.values["packing"] is True
    assert tuning.values["per_device_train_batch_size"] == 16 and "group_by_length" not in tuning.values


def test_swift_on_a_torch_without_the_varlen_kernel_batches_rows_grouped_by_length(qwen7b):
    tuning, asked = _tune(shape=qwen7b, backend="swift", longest=205,
                          installed={"liger-kernel": "0.8.5", "torch": "2.9.1"})
    assert asked
    assert tuning.values["attention"] == "sdpa"
    assert tuning.values["packing"] is False and tuning.values["group_by_length"] is True
    assert tuning.values["per_device_train_batch_size"] == 16384 // 205
    assert "swift packs only with attention=flash_attn or varlen" in "\n".join(tuning.notes)


def test_llamafactory_has_no_varlen_row_and_keeps_sdpa(qwen7b):
    tuning, _ = _tune(shape=qwen7b, installed={"liger-kernel": "0.8.5", "torch": "2.11.0"})
    assert tuning.values["attention"] == "sdpa"


def test_flash_attn_in_the_env_is_used_and_lets_swift_pack(qwen7b):
    tuning, _ = _tune(shape=qwen7b, backend="swift", installed={"flash-attn", "liger-kernel"})
    assert tuning.values["attention"] == "flash_attn" and tuning.values["packing"] is True
    assert "group_by_length" not in tuning.values


def test_a_24_gib_gpu_recomputes_and_accumulates(qwen7b):
    tuning, _ = _tune(shape=qwen7b, hardware=Hardware((Gpu("NVIDIA L4", 22.0, True),)))
    values = tuning.values
    assert values["gradient_checkpointing"] is True
    assert 1 <= values["per_device_train_batch_size"] < 16
    assert values["per_device_train_batch_size"] * values["gradient_accumulation_steps"] * 1024 == pytest.approx(16384, rel=0.35)


def test_a_gpu_too_small_for_the_weights_says_so(qwen7b):
    tuning, _ = _tune(shape=qwen7b, hardware=Hardware((Gpu("small", 12.0, True),)))
    assert tuning.values["per_device_train_batch_size"] == 1 and tuning.values["gradient_checkpointing"] is True
    assert "expect out-of-memory" in "\n".join(tuning.notes)


def test_full_fine_tuning_shards_with_zero3_over_more_gpus(qwen7b):
    alone = static_bytes(qwen7b, "full", None, None, 1)
    assert alone / qwen7b.params == 16
    assert static_bytes(qwen7b, "full", None, "zero3", 8) == alone / 8
    assert static_bytes(qwen7b, "qlora", 4, None, 1) < static_bytes(qwen7b, "lora", None, None, 1) / 3
    # what sharding buys: room for more tokens a micro-batch on each GPU
    one = plan_memory(qwen7b, 140.0, TrainConfig(method="full"), True, 1, 1024)
    eight = plan_memory(qwen7b, 140.0, TrainConfig(method="full", deepspeed="zero3"), True, 8, 1024)
    assert one.tokens_fitting < eight.tokens_fitting


def test_what_the_user_set_is_kept_and_planned_around(qwen7b):
    train = TrainConfig(per_device_train_batch_size=2, gradient_checkpointing=True, attention="eager",
                        liger_kernel=False, dtype="fp32")
    tuning, _ = _tune(train, shape=qwen7b)
    for option in ("per_device_train_batch_size", "gradient_checkpointing", "attention", "liger_kernel", "dtype"):
        assert option not in tuning.values
    assert tuning.values["gradient_accumulation_steps"] == 8     # 2 x 1024 x 8 = 16k tokens a step


@pytest.mark.parametrize("gpus", [1, 2, 3, 8])
def test_one_optimizer_step_is_the_same_global_batch_on_any_number_of_gpus(qwen7b, gpus):
    # what training dynamics depend on: rows (tokens) per optimizer step, and the rate applied to them
    hardware = Hardware(tuple(Gpu("NVIDIA H200", 140.0, True, index=str(i)) for i in range(gpus)))
    tuning, _ = _tune(shape=qwen7b, hardware=hardware, processes=gpus)
    values = tuning.values
    global_rows = values["per_device_train_batch_size"] * values["gradient_accumulation_steps"] * gpus
    rate = values.get("learning_rate", TrainConfig().learning_rate)
    # tokens an optimizer step, weighted by the learning rate: constant, whether the split is exact or not
    assert global_rows * 1024 * TrainConfig().learning_rate / rate == 16384
    if 16 % gpus == 0:
        assert global_rows == 16 and "learning_rate" not in values
    else:   # 16 packed rows cannot be split over 3 GPUs: the nearest (15), and the rate scaled, said so
        assert global_rows == 15 and rate == pytest.approx(1e-4 * 15 / 16)
        assert "linear scaling" in "\n".join(tuning.notes)


def test_two_small_gpus_take_half_the_accumulation(qwen7b):
    small = Hardware((Gpu("A", 40.0, True), Gpu("A", 40.0, True)))
    one, _ = _tune(shape=qwen7b, hardware=small)
    two, _ = _tune(shape=qwen7b, hardware=small, processes=2)
    rows = [t.values["per_device_train_batch_size"] * t.values["gradient_accumulation_steps"] for t in (one, two)]
    assert rows[0] == 2 * rows[1]


def test_older_gpus_get_fp16():
    tuning, _ = _tune(hardware=Hardware((Gpu("Tesla V100-SXM2-32GB", 31.0, False),)))
    assert tuning.values["dtype"] == "fp16"


def test_an_unknown_model_size_keeps_a_safe_batch():
    tuning, _ = _tune(shape=None)
    assert tuning.values["per_device_train_batch_size"] == 4 and tuning.values["gradient_checkpointing"] is True
    assert tuning.values["liger_kernel"] is False
    assert "config.json is not on disk" in "\n".join(tuning.notes)


@pytest.mark.parametrize("hardware,train", [(Hardware(), TrainConfig()), (H200, TrainConfig(auto=False))])
def test_without_a_gpu_or_with_auto_off_only_the_batch_defaults_are_filled(hardware, train, qwen7b):
    tuning, asked = _tune(train, shape=qwen7b, hardware=hardware)
    assert tuning.values == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
    assert tuning.notes == [] and tuning.env == {} and not asked


def test_gpu_memory_setting_overrides_detection():
    assert detect_hardware(TrainConfig(gpu_memory_gib=0)).gpus == ()
    planned = detect_hardware(TrainConfig(gpu_memory_gib=80))
    assert planned.free_gib == 80 and planned.gpus[0].bf16


NVIDIA_SMI = """#!/bin/sh
[ "$1" = "--query-gpu=index,uuid,name,memory.free,compute_cap" ] || exit 9
echo "0, GPU-aaaa, NVIDIA H200, 143000, 9.0"
echo "1, GPU-bbbb, NVIDIA H200, 70000, 9.0"
echo "2, GPU-cccc, Tesla V100-SXM2-32GB, 32000, 7.0"
"""


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_nvidia_smi_is_read_and_cuda_visible_devices_respected(fake_nvidia_smi, monkeypatch):
    everything = query_nvidia_smi()
    assert [gpu.name for gpu in everything.gpus] == ["NVIDIA H200", "NVIDIA H200", "Tesla V100-SXM2-32GB"]
    assert everything.free_gib == pytest.approx(32000 / 1024)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,GPU-bbbb")
    visible = query_nvidia_smi()
    assert len(visible.gpus) == 2 and all(gpu.bf16 for gpu in visible.gpus)
    assert visible.free_gib == pytest.approx(70000 / 1024)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert query_nvidia_smi().gpus == ()


def test_no_nvidia_smi_means_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert query_nvidia_smi().gpus == ()


def test_longest_row_counts_tokens_with_the_models_tokenizer(tiny_model, shared_data):
    from tokenizers import Tokenizer

    data = shared_data / "llamafactory" / "identity.json"
    with_tokenizer = longest_row_tokens(data, None, str(tiny_model))
    rows = json.loads(data.read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    longest_output = max(len(tokenizer.encode(row["output"], add_special_tokens=False).ids) for row in rows)
    assert longest_output < with_tokenizer < longest_output + 200
    # without a tokenizer, UTF-8 bytes: never fewer than a byte-level BPE's tokens
    assert longest_row_tokens(data, None, "no/such-model") >= with_tokenizer


def test_hub_ids_are_found_in_the_download_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    assert model_family("Qwen/Qwen2.5-7B-Instruct") == {}
    folder = tmp_path / "ms" / "hub" / "models" / "Qwen" / "Qwen2.5-7B-Instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(QWEN25_7B), encoding="utf-8")
    assert model_family("Qwen/Qwen2.5-7B-Instruct")["template"] == "qwen"
    assert ModelShape.of("Qwen/Qwen2.5-7B-Instruct").layers == 28


def test_a_run_uses_as_many_gpus_as_it_has_processes():
    four = Hardware(tuple(Gpu("NVIDIA H200", 140.0, True, str(index)) for index in range(4)))
    one, _ = _tune(hardware=four)
    assert one.env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert "CUDA_VISIBLE_DEVICES=0 (4 GPUs visible, 1 process per node: one GPU each)" in "\n".join(one.notes)
    assert _tune(hardware=four, processes=2)[0].env == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert _tune(hardware=four, processes=4)[0].env == {}
    # the seeds keep their own settings, but still one process per GPU
    assert _tune(TrainConfig(auto=False), hardware=four)[0].env == {"CUDA_VISIBLE_DEVICES": "0"}


def test_the_training_process_is_pinned_to_its_gpus(fake_nvidia_smi, tmp_path, monkeypatch):
    from stylewrap.backends.presets import load_train_config
    from stylewrap.backends.train import COMMAND_FILE, plan_training

    monkeypatch.chdir(tmp_path)
    config = load_train_config(None, ["train.model=Qwen/Qwen2.5-0.5B-Instruct", "train.template=qwen"])
    plan = plan_training(config, run_dir=tmp_path / "run")
    assert plan.invocation.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CUDA_VISIBLE_DEVICES=0" in plan.files[COMMAND_FILE]
    assert "bf16: true" in plan.files["config/train.yaml"]   # planned for the GPUs nvidia-smi listed


@pytest.mark.parametrize("processes, deepspeed, expected", [(2, False, {"ACCELERATE_USE_CPU": "true"}), (1, False, {}),
                                                             (2, True, {})])
def test_several_cpu_processes_run_distributed(processes, deepspeed, expected):
    # accelerate 1.15 (ms-swift's env) starts DDP on CPUs only when told: without it every process
    # trained its own copy on every row (tests/integration/test_multinode.py); DeepSpeed picks its
    # CPU accelerator itself, and with the variable transformers would leave ZeRO out
    tuning = tune(TrainConfig(), hardware=Hardware(), shape=None, installed=(), backend=get_backend("swift"),
                  processes_per_node=processes, nodes=1, row_tokens=lambda: 64, deepspeed=deepspeed)
    assert tuning.env == expected
