"""ms-swift (`swift`, pip `ms-swift`): the data that makes it a `TableBackend`."""

from __future__ import annotations

from pathlib import Path

from stylewrap.adapters.registration import SWIFT_INFO as REGISTRATION_FILE
from stylewrap.backends.base import LogFields, TableBackend
from stylewrap.serve.deploy import ServeRecipe
from stylewrap.backends.flags import Flag, model_flags


class SwiftBackend(TableBackend):
    name = "swift"
    env_name = "swift"
    program = "swift"
    distribution = "ms-swift"
    subcommands = {"train": ("sft",), "export": ("export",), "infer": ("infer",)}
    log_file = "logging.jsonl"
    log_fields = LogFields(step_of_total="global_step/max_steps", loss="loss", lr="learning_rate", eta="remaining_time")
    data_format = "messages"
    data_suffix = ".jsonl"
    registration_hint = "train with --custom_dataset_info {info} --dataset {name}"
    dataset_location = {"custom_dataset_info": "{data_dir}/" + REGISTRATION_FILE}
    argument_classes = {"train": ("swift.arguments.SftArguments",), "export": ("swift.arguments.ExportArguments",)}
    export_flags = {
        **model_flags(name),
        "adapter": Flag("adapters", split=True),
        "output_dir": Flag("output_dir"),
        "max_shard_size_gb": Flag("max_shard_size", fmt="{}GB"),
        # GPTQ, calibrated on the run's own training rows
        "quantization_bit": Flag(expand={bits: {"quant_method": "gptq", "quant_bits": bits} for bits in (2, 3, 4, 8)}),
        "calibration_data": Flag("dataset", split=True),
    }
    export_constants = {"merge_lora": True, "exist_ok": True}
    infer_flags = {
        **model_flags(name),
        "adapter": Flag("adapters", split=True),
        "probes_file": Flag("val_dataset", split=True),
        "result_file": Flag("result_path"),
        "max_new_tokens": Flag("max_new_tokens"),
    }
    infer_constants = {"infer_backend": "transformers", "temperature": 0.0, "stream": False}

    def write_registration(self, data_dir: Path, name: str, path: Path, fmt: str | None = None, *,
                           force: bool = True) -> Path:
        from stylewrap.adapters import register_swift

        return register_swift(data_dir / REGISTRATION_FILE, name, path, fmt, force=force)

    # how `stylewrap deploy` starts this backend's own OpenAI-compatible server
    serve_recipe = ServeRecipe(
        module="swift.cli.deploy",
        leading_args=(),
        model_flag="--model",
        adapter_flag="--adapters",
        template_flag="--template",
        model_type_flag="--model_type",
        default_args={"infer_backend": "transformers"},
        serves_base_beside_adapter=True,
        host_port_flags=("--host", "--port"),
        name_flag="--served_model_name",
        adapter_breaks_batching="max_batch_size",
    )
