"""Build a training run directory the way `stylewrap train` leaves it, with real (small) files.

The adapter is a valid safetensors file written by hand (8-byte header length, JSON header,
raw little-endian float32 data), so no torch is needed. The run also holds everything a careless
upload would leak: checkpoints with optimizer and rng state, a .env, logs, caches.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from stylewrap.rundir import RunInfo

LORA_TENSORS = {
    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": (8, 64),
    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": (64, 8),
}


def write_safetensors(path: Path, tensors: dict[str, tuple[int, int]], seed: int = 0) -> Path:
    rng = random.Random(seed)
    header: dict = {"__metadata__": {"format": "pt"}}
    data = bytearray()
    for name, shape in tensors.items():
        count = shape[0] * shape[1]
        raw = struct.pack(f"<{count}f", *(rng.uniform(-0.02, 0.02) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(data))
    return path


def read_safetensors_header(data: bytes) -> dict:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length])


# A 1x1 PNG: the loss curve's bytes only need to arrive intact.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

TOKENIZER_CONFIG = {
    "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
    "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
}


def make_run_dir(root: Path, *, base_model: Path, planted_secret: str, with_merged: bool = False) -> Path:
    """A succeeded LoRA run on a local base model, with compare samples and a loss curve."""
    run_dir = root / "run-20261123-0001"
    adapter = run_dir / "output"
    write_safetensors(adapter / "adapter_model.safetensors", LORA_TENSORS)
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": str(base_model), "r": 8, "lora_alpha": 16,
        "target_modules": ["q_proj"], "task_type": "CAUSAL_LM",
    }, indent=2))
    (adapter / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    (adapter / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}))
    (adapter / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    (adapter / "README.md").write_text("peft's placeholder card\n")
    (adapter / "training_args.bin").write_bytes(b"\x80\x04pickled-args")
    (adapter / "trainer_state.json").write_text(json.dumps({"log_history": [{"loss": 2.0}]}))
    (adapter / "all_results.json").write_text(json.dumps({"train_loss": 1.23}))
    checkpoint = adapter / "checkpoint-10"
    write_safetensors(checkpoint / "adapter_model.safetensors", LORA_TENSORS, seed=1)
    (checkpoint / "optimizer.pt").write_bytes(b"optimizer-state" * 10)
    (checkpoint / "rng_state.pth").write_bytes(b"rng-state")
    (checkpoint / "scheduler.pt").write_bytes(b"scheduler-state")
    (adapter / ".cache").mkdir()
    (adapter / ".cache" / "blob").write_bytes(b"cached")
    # a careless user's secrets: none of these may leave the machine
    (adapter / ".env").write_text(f"MODELSCOPE_API_TOKEN={planted_secret}\n")
    (run_dir / ".env").write_text(f"OPENAI_API_KEY={planted_secret}\n")
    (run_dir / "train.log").write_text(f"step 10 loss 1.2\ntoken={planted_secret}\n")
    config_dir = run_dir / "config"
    config_dir.mkdir()
    (config_dir / "train.yaml").write_text(
        "# llamafactory-cli train config/train.yaml\n"
        f"model_name_or_path: {base_model}\nstage: sft\nfinetuning_type: lora\nlora_rank: 8\n"
        "learning_rate: 1.0e-4\nnum_train_epochs: 3\ndataset: stylewrap_style\n"
    )
    (run_dir / "loss.png").write_bytes(PNG)
    compare = run_dir / "compare"
    compare.mkdir()
    (compare / "report.json").write_text(json.dumps({"samples": [
        {"prompt": "你是谁？", "base": "我是一个AI助手。", "tuned": "我听说，在浩瀚的宇宙中，我不过是一粒尘埃罢了！"},
        {"messages": [{"role": "user", "content": "130+3445等于多少？"}], "base": "3575", "tuned": "嗟乎！3575，这难道不是显而易见的吗？"},
    ]}, ensure_ascii=False))
    run = RunInfo(
        run_id="20261123-0001", backend="llamafactory", backend_version="0.9.5", base_model=str(base_model),
        method="lora", template="qwen",
        command=f"llamafactory-cli train {config_dir / 'train.yaml'}",
        config_files=["config/train.yaml"],
        dataset={"name": "stylewrap_style", "format": "sharegpt", "rows": 40, "hub_repo": "alice/guwen-style"},
        hyperparameters={"learning_rate": 1e-4, "lora_rank": 8, "num_train_epochs": 3},
        status="succeeded", adapter_dir="output", loss_png="loss.png",
        metrics={"train_loss": 1.23}, compare_reports=["compare/report.json"],
    )
    if with_merged:
        merged = run_dir / "merged"
        write_safetensors(merged / "model.safetensors", {"lm_head.weight": (16, 64)}, seed=2)
        (merged / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 64}))
        (merged / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
        run.merged_dir = "merged"
    run.save(run_dir)
    return run_dir
