"""LLaMA-Factory (`llamafactory-cli`, pip `llamafactory`): the data that makes it a `TableBackend`."""

from __future__ import annotations

from pathlib import Path
from stylewrap.backends.base import LogFields, TableBackend
from stylewrap.serve.deploy import ServeRecipe
from stylewrap.backends.flags import Flag, model_flags
from stylewrap.runner import Invocation

PREDICT_SCRIPT = Path(__file__).with_name("lf_predict.py")


class LlamaFactoryBackend(TableBackend):
    name = "llamafactory"
    env_name = "llamafactory"
    program = "llamafactory-cli"
    distribution = "llamafactory"
    subcommands = {"train": ("train",), "export": ("export",)}
    # its launcher only switches to torchrun on >1 visible GPU unless told to
    launcher_env = {"FORCE_TORCHRUN": "1"}
    log_file = "trainer_log.jsonl"
    log_fields = LogFields(step="current_steps", total="total_steps", loss="loss", lr="lr", eta="remaining_time")
    data_format = "sharegpt"
    data_suffix = ".json"
    registration_hint = "train with dataset_dir: {dataset_dir}, dataset: {name}"
    dataset_location = {"dataset_dir": "{data_dir}"}
    argument_classes = {
        command: tuple(f"llamafactory.hparams.{cls}" for cls in
                       ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments",
                        "TrainingArguments"))
        for command in ("train", "export")
    }
    export_flags = {
        **model_flags(name),
        "adapter": Flag("adapter_name_or_path"),
        "output_dir": Flag("export_dir"),
        "max_shard_size_gb": Flag("export_size"),
        # GPTQ, calibrated on the run's own training rows
        "quantization_bit": Flag("export_quantization_bit"),
        "calibration_data": Flag("export_quantization_dataset"),
    }
    export_constants = {"finetuning_type": "lora", "export_device": "cpu", "export_legacy_format": False}
    infer_flags = {
        **model_flags(name),
        "adapter": Flag("adapter_name_or_path"),
        "probes_file": Flag("probes_file"),
        "result_file": Flag("predictions_file"),
        "max_new_tokens": Flag("max_new_tokens"),
    }
    infer_constants = {"infer_backend": "huggingface", "do_sample": False}

    def infer_invocation(self, run_dir: Path, config_file: str) -> Invocation:
        python = self.python() or Path("python")
        return Invocation(argv=[str(python), "-I", str(PREDICT_SCRIPT), config_file], env=self.base_env(), cwd=Path(run_dir))

    def write_registration(self, data_dir: Path, name: str, path: Path, fmt: str | None = None, *,
                           force: bool = True) -> Path:
        from stylewrap.adapters import register_llamafactory

        return register_llamafactory(data_dir, name, path, fmt, force=force)

    # how `stylewrap deploy` starts this backend's own OpenAI-compatible server
    serve_recipe = ServeRecipe(
        module="llamafactory.cli",
        leading_args=("api",),
        model_flag="--model_name_or_path",
        adapter_flag="--adapter_name_or_path",
        template_flag="--template",
        default_args={"infer_backend": "huggingface"},
        serves_base_beside_adapter=False,
        host_port_env=("API_HOST", "API_PORT"),
        # without it every answer claims to come from `gpt-3.5-turbo`
        name_env="API_MODEL_NAME",
    )
