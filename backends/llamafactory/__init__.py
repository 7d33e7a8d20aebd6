"""LLaMA-Factory (`llamafactory-cli`, pip `llamafactory`): everything stylewrap knows about it.

Names were checked against llamafactory 0.9.5 `hparams/*.py`; `known_keys` re-checks every
rendered key against the installed version before a run. Its dataset registration
(`dataset_info.json`) is in `registration.py`, its inference script in `predict.py`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from stylewrap.backends.base import EnvSpec, LogFields, TableBackend, TemplateProbe, WebUI
from stylewrap.backends.flags import TRACKER_LOGS, TRAINER_ARGUMENTS, Flag, StepTable, same
from stylewrap.backends.llamafactory import registration
from stylewrap.backends.serving import ServeRecipe

NAME = "llamafactory"

# the rows that name the model, in every step
MODEL = {
    "model": Flag("model_name_or_path"),
    # it reads the architecture from config.json
    "model_type": Flag(drop=True),
    "template": Flag("template", values={"qwen2_5": "qwen"}),
}
# the rows that name the weights a step loads after training: the model and the trained adapter
WEIGHTS = {**MODEL, "adapter": Flag("adapter_name_or_path")}

TRAIN = StepTable(
    flags={
        **MODEL,
        # its qwen template injects "You are a helpful assistant." unless a system prompt is set
        "system": Flag("default_system"),
        "dtype": Flag(expand={"auto": {}, "bf16": {"bf16": True}, "fp16": {"fp16": True}, "fp32": {}}),
        "attention": Flag(expand={"auto": {}, "sdpa": {"flash_attn": "sdpa"}, "flash_attn": {"flash_attn": "fa2"},
                                  "eager": {"flash_attn": "disabled"}}),
        "method": Flag(expand={"lora": {"finetuning_type": "lora"},
                               "qlora": {"finetuning_type": "lora", "quantization_method": "bnb"},
                               "full": {"finetuning_type": "full"}}),
        "quantization_bit": Flag("quantization_bit"),
        **same("lora_rank", "lora_alpha", "lora_dropout", "lora_target", "dataset", "dataset_dir", "eval_dataset",
               "val_size", "cutoff_len"),
        # LLaMA-Factory only truncates at cutoff_len; for 'drop' stylewrap leaves the long rows out
        # of the run's data itself (rundata, counted with the model's tokenizer)
        "overlength": Flag(drop=True),
        # plain packing lets packed rows attend to each other; neat packing keeps them apart
        "packing": Flag(expand={True: {"packing": True, "neat_packing": True}, False: {"packing": False}}),
        "gradient_checkpointing": Flag(expand={True: {"disable_gradient_checkpointing": False},
                                               False: {"disable_gradient_checkpointing": True}}),
        "liger_kernel": Flag("enable_liger_kernel"),
        **same(*TRAINER_ARGUMENTS),
        # its identity.json placeholders are filled in the rows stylewrap writes (`mixing`): no key
        "model_name": Flag(drop=True),
        "model_author": Flag(drop=True),
        # earlier answers stay in the row as context, without loss
        "loss_on": Flag(expand={"all_turns": {}, "last_turn": {"mask_history": True}}),
        # swanlab through its own switch (local mode: nothing leaves the machine), the rest through the HF Trainer
        "report_to": Flag(expand={
            **{tracker: {"report_to": tracker} for tracker in ("none", "tensorboard", "wandb", "mlflow")},
            "swanlab": {"report_to": "none", "use_swanlab": True, "swanlab_mode": "local",
                        "swanlab_logdir": TRACKER_LOGS["swanlab"]},
        }),
    },
    constants={
        "method": {"stage": "sft", "do_train": True},
        "output": {"report_to": "none", "plot_loss": True, "overwrite_output_dir": True},
    },
)

# `stage: dpo` runs every pairwise loss (pref_loss), `stage: kto` the unpaired one (0.9.5
# hparams/finetuning_args.py RLHFArguments). With LoRA and no ref_model, the reference is the
# policy with its adapters disabled: the base model; from an SFT run stylewrap names the run's
# base + adapter as ref_model + ref_model_adapters, so the reference is the SFT model as on ms-swift.
PREFERENCE = StepTable(
    flags={
        **TRAIN.flags,
        "objective": Flag(expand={"dpo": {"stage": "dpo"}, "orpo": {"stage": "dpo", "pref_loss": "orpo"},
                                  "simpo": {"stage": "dpo", "pref_loss": "simpo"}, "kto": {"stage": "kto"}}),
        "beta": Flag("pref_beta"),
        "loss_type": Flag("pref_loss"),
        "sft_weight": Flag("pref_ftx"),
        "simpo_gamma": Flag("simpo_gamma"),
        # a LoRA adapter given here trains on (it is not frozen and a new one stacked)
        "adapter": Flag("adapter_name_or_path"),
        "ref_model": Flag("ref_model"),
        "ref_adapter": Flag("ref_model_adapters"),
        # its parser: "`train_on_prompt` or `mask_history` cannot be set as True except SFT"
        "loss_on": Flag(expand={"all_turns": {}}),
    },
    constants={"method": {"do_train": True}, "output": TRAIN.constants["output"]},
)

EXPORT = StepTable(
    flags={
        **WEIGHTS,
        "output_dir": Flag("export_dir"),
        "max_shard_size_gb": Flag("export_size"),
        # GPTQ, calibrated on the run's own training rows
        "quantization_bit": Flag("export_quantization_bit"),
        "calibration_data": Flag("export_quantization_dataset"),
    },
    constants={"export": {"finetuning_type": "lora", "export_device": "cpu", "export_legacy_format": False}},
)

INFER = StepTable(
    flags={
        **WEIGHTS,
        "probes_file": Flag("probes_file"),
        "result_file": Flag("predictions_file"),
        "max_new_tokens": Flag("max_new_tokens"),
    },
    constants={"infer": {"infer_backend": "huggingface", "do_sample": False}},
)


class LlamaFactoryBackend(TableBackend):
    name = NAME
    program = "llamafactory-cli"
    distribution = "llamafactory"
    env = EnvSpec(
        requirements=Path(str(resources.files("stylewrap.templates") / "envs" / "llamafactory.txt")),
        cli_check=("version",),
        imports=("torch", "transformers:Qwen2ForCausalLM", "datasets", "peft", "torchaudio", "llamafactory.data"),
        cpu_removals=("torchvision",),
        cpu_strip_native=("torchaudio",),
    )
    subcommands = {"train": ("train",), "preference": ("train",), "export": ("export",)}
    # `llamafactory-cli train` with do_predict would need the metrics extras just to score answers
    step_scripts = {"infer": Path(__file__).with_name("predict.py")}
    # its launcher only switches to torchrun on >1 visible GPU unless told to
    launcher_env = {"FORCE_TORCHRUN": "1"}
    log_file = "trainer_log.jsonl"
    log_fields = LogFields(step="current_steps", total="total_steps", loss="loss", lr="lr", eta="remaining_time")
    data_format = "sharegpt"
    # preference rows: pairs for dpo/orpo/simpo, labelled answers for kto
    preference_formats = {"pairs": "ranking", "unpaired": "messages_kto"}
    data_suffix = ".json"
    registration = registration
    registration_hint = "train with dataset_dir: {dataset_dir}, dataset: {name}"
    dataset_location = {"dataset_dir": "{data_dir}"}
    # LLaMA Board: it binds 0.0.0.0 unless GRADIO_SERVER_NAME says otherwise
    webui = WebUI(args=("webui",), env={"GRADIO_SERVER_NAME": "{host}", "GRADIO_SERVER_PORT": "{port}"})
    # a dataset_info.json entry with ms_hub_url (registration.register_hub), read from ModelScope
    hub_dataset_location = {"dataset": "{name}", "dataset_dir": "{data_dir}"}
    hub_dataset_env = {"USE_MODELSCOPE_HUB": "1"}
    argument_classes = {
        step: tuple(f"llamafactory.hparams.{cls}" for cls in
                    ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments", "TrainingArguments"))
        for step in ("train", "preference", "export")
    }
    tables = {"train": TRAIN, "preference": PREFERENCE, "export": EXPORT, "infer": INFER}
    # its own template code on one conversation, for `templatecheck`
    template_probe = TemplateProbe(Path(__file__).with_name("template_probe.py"), train_keys=("enable_thinking", "mask_history"))
    nothink_templates = {"qwen3": "qwen3_nothink", "qwen3_vl": "qwen3_vl_nothink", "qwen3_5": "qwen3_5_nothink"}
    dataset_probe = Path(__file__).with_name("dataset_probe.py")
    dataset_registry = "data/dataset_info.json"   # its default dataset_dir "data"

    # how `stylewrap deploy` starts this backend's own OpenAI-compatible server
    serve_recipe = ServeRecipe(
        module="llamafactory.cli",
        leading_args=("api",),
        model_flag="--model_name_or_path",
        adapter_flag="--adapter_name_or_path",
        template_flag="--template",
        system_flag="--default_system",
        default_args={"infer_backend": "huggingface"},
        serves_base_beside_adapter=False,
        host_port_env=("API_HOST", "API_PORT"),
        # without it every answer claims to come from `gpt-3.5-turbo`
        name_env="API_MODEL_NAME",
        # hparams/model_args.py EngineName; the pins are hparams/parser.py's check_version calls
        engines={"transformers": {"infer_backend": "huggingface"}, "vllm": {"infer_backend": "vllm"},
                 "sglang": {"infer_backend": "sglang"}},
        engine_refusals={"lmdeploy": "LLaMA-Factory 0.9.5's infer_backend is huggingface, vllm or sglang"},
        engine_pins={"vllm": ">=0.4.3,<=0.11.0", "sglang": ">=0.4.5"},
    )
