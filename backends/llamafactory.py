"""LLaMA-Factory (`llamafactory-cli`, pip `llamafactory`): the data that makes it a `TableBackend`."""

from __future__ import annotations

from pathlib import Path
from stylewrap.backends.base import LogFields, TableBackend
from stylewrap.backends.flags import Flag


class LlamaFactoryBackend(TableBackend):
    name = "llamafactory"
    env_name = "llamafactory"
    program = "llamafactory-cli"
    distribution = "llamafactory"
    # `do_predict` through `train` is llamafactory's batch inference (generated_predictions.jsonl)
    subcommands = {"train": ("train",), "export": ("export",), "infer": ("train",)}
    # its launcher only switches to torchrun on >1 visible GPU unless told to
    launcher_env = {"FORCE_TORCHRUN": "1"}
    log_file = "trainer_log.jsonl"
    log_fields = LogFields(step="current_steps", total="total_steps", loss="loss", lr="lr", eta="remaining_time")
    data_format = "sharegpt"
    data_suffix = ".json"
    dataset_location = {"dataset_dir": "{data_dir}"}
    predictions_file = "generated_predictions.jsonl"
    prediction_field = "predict"
    argument_classes = {
        command: tuple(f"llamafactory.hparams.{cls}" for cls in
                       ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments",
                        "TrainingArguments"))
        for command in ("train", "export", "infer")
    }
    export_flags = {
        "model": Flag("model_name_or_path"),
        "adapter": Flag("adapter_name_or_path"),
        "template": Flag("template", values={"qwen2_5": "qwen"}),
        "model_type": None,
        "output_dir": Flag("export_dir"),
        "max_shard_size_gb": Flag("export_size"),
        "quantization_bit": Flag("export_quantization_bit"),
        "trust_remote_code": Flag("trust_remote_code"),
    }
    export_constants = {"finetuning_type": "lora", "export_device": "cpu", "export_legacy_format": False}
    infer_flags = {
        "model": Flag("model_name_or_path"),
        "adapter": Flag("adapter_name_or_path"),
        "template": Flag("template", values={"qwen2_5": "qwen"}),
        "model_type": None,
        "system": Flag("default_system"),
        "dataset": Flag("eval_dataset"),
        "dataset_dir": Flag("dataset_dir"),
        "custom_dataset_info": None,
        "cutoff_len": Flag("cutoff_len"),
        "max_new_tokens": Flag("max_new_tokens"),
        "output_dir": Flag("output_dir"),
        "result_file": Flag(drop=True),
    }
    infer_constants = {"stage": "sft", "do_predict": True, "predict_with_generate": True, "finetuning_type": "lora",
                       "do_sample": False, "per_device_eval_batch_size": 1, "report_to": "none",
                       "overwrite_output_dir": True}

    def write_registration(self, data_dir: Path, name: str, path: Path) -> None:
        from stylewrap.adapters import register_llamafactory

        register_llamafactory(data_dir, name, path, self.data_format, force=True)
