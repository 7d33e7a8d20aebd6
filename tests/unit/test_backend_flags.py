"""The flag tables: unified options -> each backend's names, as data, through the one translation."""

from __future__ import annotations

import pytest
import yaml

from swiftv2 import swift_v2_to_v4

from stylewrap.backends import flags, registry
from stylewrap.backends.base import Launch, get_backend
from stylewrap.backends.llamafactory import LlamaFactoryBackend
from stylewrap.backends.registry import backend_class, backend_names, register_backend
from stylewrap.backends.swift import SwiftBackend
from stylewrap.backends.presets import preset_path
from stylewrap.errors import ConfigError, InputError


def flat(sections):
    return {k: v for section in sections.values() for k, v in section.items()}


def translated(backend, options):
    return get_backend(backend).sections("train", options)


@pytest.mark.parametrize("option, value, lf, sw", [
    ("lora_target", "all", {"lora_target": "all"}, {"target_modules": ["all-linear"]}),
    ("lora_target", "q_proj,v_proj", {"lora_target": "q_proj,v_proj"}, {"target_modules": ["q_proj", "v_proj"]}),
    ("cutoff_len", 1024, {"cutoff_len": 1024}, {"max_length": 1024}),
    ("val_size", 0.1, {"val_size": 0.1}, {"split_dataset_ratio": 0.1}),
    ("dtype", "bf16", {"bf16": True}, {"torch_dtype": "bfloat16"}),
    ("dtype", "fp16", {"fp16": True}, {"torch_dtype": "float16"}),
    ("dtype", "auto", {}, {}),
    ("method", "lora", {"finetuning_type": "lora"}, {"tuner_type": "lora"}),
    ("method", "full", {"finetuning_type": "full"}, {"tuner_type": "full"}),
    ("method", "qlora", {"finetuning_type": "lora", "quantization_method": "bnb"}, {"tuner_type": "lora", "quant_method": "bnb"}),
    ("quantization_bit", 4, {"quantization_bit": 4}, {"quant_bits": 4}),
    ("system", "你好", {"default_system": "你好"}, {"system": "你好"}),
    ("gradient_checkpointing", False, {"disable_gradient_checkpointing": True}, {"gradient_checkpointing": False}),
    ("gradient_checkpointing", True, {"disable_gradient_checkpointing": False}, {"gradient_checkpointing": True}),
    ("attention", "flash_attn", {"flash_attn": "fa2"}, {"attn_impl": "flash_attn"}),
    ("attention", "eager", {"flash_attn": "disabled"}, {"attn_impl": "eager"}),
    ("liger_kernel", True, {"enable_liger_kernel": True}, {"use_liger_kernel": True}),
    ("model", "/m", {"model_name_or_path": "/m"}, {"model": "/m"}),
    ("model_type", "qwen2", {}, {"model_type": "qwen2"}),
    ("template", "qwen2_5", {"template": "qwen"}, {"template": "qwen2_5"}),
    ("gradient_accumulation_steps", 16, {"gradient_accumulation_steps": 16}, {"gradient_accumulation_steps": 16}),
])
def test_option_translates_per_backend(option, value, lf, sw):
    lf_keys = flat(translated("llamafactory", {option: value}))
    sw_keys = flat(translated("swift", {option: value}))
    for key, expected in lf.items():
        assert lf_keys[key] == expected
    for key, expected in sw.items():
        assert sw_keys[key] == expected
    if not lf:
        assert not set(lf_keys) - set(flat(translated("llamafactory", {})))
    if not sw:
        assert not set(sw_keys) - set(flat(translated("swift", {})))


def test_swift_constants_handle_its_traps():
    keys = flat(translated("swift", {}))
    assert keys["check_model"] is False          # offline: no hub look-up of a local model
    assert keys["add_version"] is False          # no output/v0-<timestamp>/ folder


def test_overlength_reaches_each_backend_as_it_can():
    # ms-swift drops or truncates itself; LLaMA-Factory only truncates, so stylewrap drops the rows before it
    assert flat(translated("swift", {"overlength": "truncate"}))["truncation_strategy"] == "right"
    assert flat(translated("swift", {"overlength": "drop"}))["truncation_strategy"] == "delete"
    assert "truncation_strategy" not in flat(translated("llamafactory", {"overlength": "drop"}))


def test_backend_only_option_is_an_error_elsewhere():
    with pytest.raises(ConfigError, match="custom_dataset_info: llamafactory has no equivalent"):
        translated("llamafactory", {"custom_dataset_info": "x.json"})
    with pytest.raises(ConfigError, match="dataset_dir: swift has no equivalent"):
        translated("swift", {"dataset_dir": "data"})


def test_unknown_option_and_unknown_value_are_errors():
    with pytest.raises(ConfigError, match="not an option stylewrap's train step knows"):
        translated("swift", {"lora_rnak": 8})
    with pytest.raises(ConfigError, match="unsupported value 'int8'"):
        translated("swift", {"dtype": "int8"})


def test_none_values_leave_the_backend_default():
    assert "max_steps" not in flat(translated("llamafactory", {"max_steps": None}))


def test_swift_v2_flags_of_the_tutorial_become_the_seed_classical_preset():
    preset = yaml.safe_load(preset_path("seed-classical").read_text(encoding="utf-8"))
    v4 = swift_v2_to_v4(preset["swift_v2_flags"])
    assert "check_dataset_strategy" not in v4 and "sft_type" not in v4
    train = dict(preset["config"]["train"])
    options = {"model": train["model"], "method": train["method"], "lora_rank": train["lora_rank"],
               "lora_alpha": train["lora_alpha"], "lora_dropout": train["lora_dropout"],
               "lora_target": train["lora_target"], "cutoff_len": preset["config"]["data"]["max_tokens"],
               "overlength": preset["config"]["data"]["overlength"], "lr_scheduler_type": train["lr_scheduler_type"],
               "per_device_train_batch_size": train["per_device_train_batch_size"],
               "gradient_accumulation_steps": train["gradient_accumulation_steps"],
               "learning_rate": train["learning_rate"], "max_grad_norm": train["max_grad_norm"],
               "warmup_ratio": train["warmup_ratio"], "gradient_checkpointing": train["gradient_checkpointing"],
               "num_train_epochs": train["num_train_epochs"], "eval_steps": train["eval_steps"],
               "save_steps": train["save_steps"], "save_total_limit": train["save_total_limit"],
               "logging_steps": train["logging_steps"]}
    rendered = flat(translated("swift", options))
    for key, value in v4.items():
        assert rendered[key] == value, key
    # what SWIFT 2.x did without a flag: HF's linear schedule, rows over max_length deleted
    assert rendered["lr_scheduler_type"] == "linear" and rendered["truncation_strategy"] == "delete"


def test_registry_lists_builtins_through_entry_points_and_takes_runtime_backends(monkeypatch):
    assert {"llamafactory", "swift"} <= set(backend_names())
    assert isinstance(get_backend("swift"), SwiftBackend)
    assert isinstance(get_backend("llamafactory"), LlamaFactoryBackend)

    class Renamed(SwiftBackend):
        name = "my-swift"

    monkeypatch.setattr(registry, "_RUNTIME", {})
    register_backend("my-swift", Renamed)
    assert get_backend("my-swift").name == "my-swift" and "my-swift" in backend_names()
    with pytest.raises(InputError, match="unknown backend 'nope'"):
        get_backend("nope")


@pytest.mark.parametrize("name", backend_names())
def test_every_backend_column_names_only_options_stylewrap_has(name):
    # a misspelt option in a unit's table would never be translated: it must be caught here
    assert flags.unknown_options(backend_class(name).tables) == []


def test_one_translation_for_every_step():
    swift = get_backend("swift")
    assert swift.sections("export", {"max_shard_size_gb": 5, "adapter": "a,b"})["export"] == {
        "max_shard_size": "5GB", "adapters": ["a", "b"], "merge_lora": True, "exist_ok": True}
    with pytest.raises(ConfigError, match="export.probes_file: not an option stylewrap's export step knows"):
        swift.sections("export", {"probes_file": "p.jsonl"})
    with pytest.raises(ConfigError, match="infer.quantization_bit: not an option stylewrap's infer step knows"):
        get_backend("llamafactory").sections("infer", {"quantization_bit": 4})


def test_launch_env_only_when_distributed():
    assert Launch().env() == {}
    env = Launch(nproc_per_node=2, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29500).env()
    assert env == {"NPROC_PER_NODE": "2", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("record, step, total, loss", [
    ({"current_steps": 3, "total_steps": 10, "loss": 2.5, "lr": 1e-4, "remaining_time": "0:01:00"}, 3, 10, 2.5),
])
def test_llamafactory_log_record(record, step, total, loss):
    progress = get_backend("llamafactory").read_progress(record)
    assert (progress.step, progress.total, progress.loss, progress.eta) == (step, total, loss, "0:01:00")


def test_swift_log_record():
    progress = get_backend("swift").read_progress(
        {"loss": 1.25, "learning_rate": 5e-5, "global_step/max_steps": "7/40", "remaining_time": "3s"})
    assert (progress.step, progress.total, progress.loss, progress.lr) == (7, 40, 1.25, 5e-5)
    # the final summary record has no per-step loss
    assert get_backend("swift").read_progress({"train_loss": 1.0, "global_step/max_steps": "40/40"}) is None
