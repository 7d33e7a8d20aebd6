"""ms-swift (`swift`, pip `ms-swift`): everything stylewrap knows about it.

Names were checked against ms-swift 4.6.0 `swift/arguments/*.py`; `known_keys` re-checks every
rendered key against the installed version before a run. Its dataset registration
(`--custom_dataset_info`) is in `registration.py`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from stylewrap.backends.base import EnvSpec, LogFields, TableBackend, TemplateProbe, WebUI
from stylewrap.backends.flags import TRAINER_ARGUMENTS, Flag, StepTable, same
from stylewrap.backends.serving import ServeRecipe
from stylewrap.backends.swift import registration

NAME = "swift"
# ms-swift's external plugin that packs rows through PyTorch's own varlen FlashAttention kernel
# (varlen_attention.py: it runs in the swift env, which imports it by path)
VARLEN_PLUGIN = str(Path(__file__).with_name("varlen_attention.py"))
VARLEN_ATTENTION = "stylewrap_varlen"
# `swift deploy` gathers concurrent requests into one batch (serve_batching.py, same way as above)
BATCHING_PLUGIN = str(Path(__file__).with_name("serve_batching.py"))

# the rows that name the model, in every step
MODEL = {
    "model": Flag("model"),
    # it cannot guess the architecture of a local folder it has no hub id for
    "model_type": Flag("model_type"),
    "template": Flag("template"),
}
# the rows that name the weights a step loads after training: the model and the trained adapter
WEIGHTS = {**MODEL, "adapter": Flag("adapters", split=True)}

TRAIN = StepTable(
    flags={
        **MODEL,
        # its qwen template injects "You are a helpful assistant." unless a system prompt is set
        "system": Flag("system"),
        "dtype": Flag(expand={"auto": {}, "bf16": {"torch_dtype": "bfloat16"}, "fp16": {"torch_dtype": "float16"},
                              "fp32": {"torch_dtype": "float32"}}),
        "attention": Flag(expand={"auto": {}, "sdpa": {"attn_impl": "sdpa"}, "flash_attn": {"attn_impl": "flash_attn"},
                                  "eager": {"attn_impl": "eager"},
                                  "varlen": {"attn_impl": VARLEN_ATTENTION, "external_plugins": [VARLEN_PLUGIN]}}),
        "method": Flag(expand={"lora": {"tuner_type": "lora"}, "qlora": {"tuner_type": "lora", "quant_method": "bnb"},
                               "full": {"tuner_type": "full"}}),
        "quantization_bit": Flag("quant_bits"),
        **same("lora_rank", "lora_alpha", "lora_dropout", "dataset", "custom_dataset_info", "packing"),
        "lora_target": Flag("target_modules", values={"all": ["all-linear"]}, split=True),
        "eval_dataset": Flag("val_dataset", split=True),
        "val_size": Flag("split_dataset_ratio"),
        "cutoff_len": Flag("max_length"),
        # ms-swift's own 'delete' also covers a hub dataset stylewrap never reads; stylewrap drops
        # rows of a local file itself first (counted with the model's tokenizer), so none reach it
        "overlength": Flag("truncation_strategy", values={"truncate": "right", "drop": "delete"}),
        "gradient_checkpointing": Flag("gradient_checkpointing"),
        "liger_kernel": Flag("use_liger_kernel"),
        **same(*TRAINER_ARGUMENTS),
        # fill {{NAME}}/{{AUTHOR}} in its own self-cognition dataset, should extra_args add it; stylewrap
        # fills the identity rows it mixes in itself (`mixing`), the same for both backends
        **same("model_name", "model_author"),
        # ms-swift 4.6 loss_scale base strategies: default (every answer), last_round, all
        "loss_on": Flag(expand={"all_turns": {}, "last_turn": {"loss_scale": "last_round"}}),
        "report_to": Flag(expand={
            **{tracker: {"report_to": tracker} for tracker in ("none", "tensorboard", "wandb", "mlflow")},
            # local mode writes ./swanlog (TRACKER_LOGS) in the run directory, its cwd, and needs no account
            "swanlab": {"report_to": "swanlab", "swanlab_mode": "local"},
        }),
    },
    constants={
        # offline-friendly: check_model looks the model up on the hub; add_version would put the
        # run in output_dir/v0-<timestamp>/ where nothing else expects it
        "output": {"report_to": "none", "check_model": False, "add_version": False},
    },
    requires={"packing": ("attention", ("flash_attn", "varlen"), "ms-swift packs rows only with flash attention: set "
                          "train.attention=flash_attn (flash-attn installed) or varlen (PyTorch's own varlen kernel, "
                          "torch 2.10+), or turn packing off (length-grouped batches are the fallback)")},
)

# `swift rlhf --rlhf_type ...` (4.6.0 swift/arguments/rlhf_args.py). It turns simpo into CPO with
# loss_type simpo and an NLL term weighted by cpo_alpha=1; 0 makes it SimPO as LLaMA-Factory runs it.
# From an SFT LoRA run: --adapters trains on the run's adapter and --ref_adapters makes the SFT
# model the reference (its docs); a ref_model with LoRA is refused, the reference base is --model.
PREFERENCE = StepTable(
    flags={
        **TRAIN.flags,
        "objective": Flag(expand={"dpo": {"rlhf_type": "dpo"}, "orpo": {"rlhf_type": "orpo"},
                                  "simpo": {"rlhf_type": "simpo", "cpo_alpha": 0.0}, "kto": {"rlhf_type": "kto"}}),
        "beta": Flag("beta"),
        "loss_type": Flag("loss_type"),
        "sft_weight": Flag("rpo_alpha"),
        "simpo_gamma": Flag("simpo_gamma"),
        "adapter": Flag("adapters", split=True),
        "ref_model": Flag(drop=True),
        "ref_adapter": Flag("ref_adapters", split=True),
    },
    constants=TRAIN.constants,
    requires=TRAIN.requires,
)

EXPORT = StepTable(
    flags={
        **WEIGHTS,
        "output_dir": Flag("output_dir"),
        "max_shard_size_gb": Flag("max_shard_size", fmt="{}GB"),
        # GPTQ, calibrated on the run's own training rows
        "quantization_bit": Flag(expand={bits: {"quant_method": "gptq", "quant_bits": bits} for bits in (2, 3, 4, 8)}),
        "calibration_data": Flag("dataset", split=True),
    },
    constants={"export": {"merge_lora": True, "exist_ok": True}},
)

INFER = StepTable(
    flags={
        **WEIGHTS,
        "probes_file": Flag("val_dataset", split=True),
        "result_file": Flag("result_path"),
        "max_new_tokens": Flag("max_new_tokens"),
    },
    constants={"infer": {"infer_backend": "transformers", "temperature": 0.0, "stream": False}},
)


class SwiftBackend(TableBackend):
    name = NAME
    program = "swift"
    distribution = "ms-swift"
    env = EnvSpec(
        requirements=Path(str(resources.files("stylewrap.templates") / "envs" / "swift.txt")),
        cli_check=("sft", "--help"),
        imports=("torch", "transformers:Qwen2ForCausalLM", "datasets", "peft", "swift.dataset", "swift.template"),
    )
    subcommands = {"train": ("sft",), "preference": ("rlhf",), "export": ("export",), "infer": ("infer",)}
    log_file = "logging.jsonl"
    log_fields = LogFields(step_of_total="global_step/max_steps", loss="loss", lr="learning_rate", eta="remaining_time")
    data_format = "messages"
    # preference rows: pairs for dpo/orpo/simpo, labelled answers for kto
    preference_formats = {"pairs": "messages_pairs", "unpaired": "messages_kto"}
    data_suffix = ".jsonl"
    registration = registration
    registration_hint = "train with --custom_dataset_info {info} --dataset {name}"
    dataset_location = {"custom_dataset_info": "{data_dir}/" + registration.INFO_FILE}
    # ms-swift downloads a ModelScope dataset named on --dataset itself
    hub_dataset_location = {"dataset": "{repo_id}"}
    argument_classes = {"train": ("swift.arguments.SftArguments",), "preference": ("swift.arguments.RLHFArguments",),
                        "export": ("swift.arguments.ExportArguments",)}
    tables = {"train": TRAIN, "preference": PREFERENCE, "export": EXPORT, "infer": INFER}
    # its own template code on one conversation, for `templatecheck`
    template_probe = TemplateProbe(Path(__file__).with_name("template_probe.py"), train_keys=("loss_scale", "enable_thinking", "add_non_thinking_prefix"))
    nothink_templates = {"qwen3": "qwen3_nothinking"}
    dataset_probe = Path(__file__).with_name("dataset_probe.py")
    dataset_registry = None   # its built-in registry; data.mix[].registry: a --custom_dataset_info file

    # `swift web-ui`, the tutorial's 界面化; Gradio comes with `backend install swift --webui`
    webui = WebUI(args=("web-ui", "--server_name", "{host}", "--server_port", "{port}"))

    # how `stylewrap deploy` starts this backend's own OpenAI-compatible server
    serve_recipe = ServeRecipe(
        module="swift.cli.deploy",
        leading_args=(),
        model_flag="--model",
        adapter_flag="--adapters",
        template_flag="--template",
        system_flag="--system",
        model_type_flag="--model_type",
        default_args={"infer_backend": "transformers"},
        serves_base_beside_adapter=True,
        host_port_flags=("--host", "--port"),
        name_flag="--served_model_name",
        batch_flag="max_batch_size",
        batches_adapters=False,
        # its engine batches only what is queued the moment it looks: the plugin gathers a burst
        batch_plugins=(BATCHING_PLUGIN,),
        plugins_flag="external_plugins",
        batch_window_env="STYLEWRAP_BATCH_WINDOW_MS",
        # arguments/infer_args.py infer_backend (`pt` is its deprecated name for transformers)
        engines={engine: {"infer_backend": engine} for engine in ("transformers", "vllm", "sglang", "lmdeploy")},
    )
