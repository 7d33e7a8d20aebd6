"""The DeepSpeed presets `--deepspeed NAME` (`train.deepspeed`) renders from templates/deepspeed.json.j2:
the one list the CLI help, the config and the renderer read. Anything else given is a JSON file."""

# name -> (ZeRO stage, offload optimizer and parameters to CPU memory)
DEEPSPEED_PRESETS: dict[str, tuple[int, bool]] = {
    "zero2": (2, False),
    "zero2_offload": (2, True),
    "zero3": (3, False),
    "zero3_offload": (3, True),
}
