"""The 7B-shaped benchmark model: a tokenizer trained on the real TslDial text, a random-weight Qwen2.5-7B.

No hub and no real weights: `tokenizer` runs anywhere with `tokenizers` (train it where the data is and
carry the folder), `model` runs on the GPU box and writes the random bf16 weights next to the tokenizer
(15 GB, made in seconds on the GPU rather than carried). The config keeps Qwen2.5-7B's 152,064-row
embedding so FLOPs and memory are the 7B's; the tokenizer's own ids are a prefix of it, and the
output rows of the ids past it are zero, so that greedy decoding picks ids the tokenizer knows.

    python bench/gpu/model7b.py tokenizer --data ../shared/data/tsldial --out .gpu/Qwen2.5-7B-Instruct
    python bench/gpu/model7b.py model --out .gpu/Qwen2.5-7B-Instruct          # on the GPU box
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Qwen2.5-7B-Instruct's published config.json (architecture numbers only).
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "vocab_size": 152064,
    "attention_dropout": 0.0,
    "use_sliding_window": False,
    "sliding_window": 131072,
    "max_window_layers": 28,
    "initializer_range": 0.02,
    "use_cache": True,
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tsldial_texts(data_dir: Path):
    for row in json.loads((data_dir / "TslDial.json").read_text(encoding="utf-8")):
        yield row["input"]
        yield row["output"]
    for name in ("2_Dialogues.jsonl", "3_TranslationalDialogues.jsonl"):
        for line in (data_dir / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                yield row.get("问", "")
                yield row.get("答", "")


def build_tokenizer(data_dir: Path, out: Path, vocab_size: int) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(tsldial_texts(data_dir), trainer)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": None,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
                "model_max_length": 32768,
                "chat_template": CHATML,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return tokenizer.get_vocab_size()


def build_model(out: Path) -> int:
    import torch
    from tokenizers import Tokenizer
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    config = Qwen2Config(
        **QWEN25_7B,
        bos_token_id=tokenizer.token_to_id("<|endoftext|>"),
        eos_token_id=tokenizer.token_to_id("<|im_end|>"),
        pad_token_id=tokenizer.token_to_id("<|endoftext|>"),
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
        # the rows past the tokenizer's vocabulary score 0 while a known token's random score is above 0
        # almost surely: greedy decoding then says words a server streams, not ids it skips as unknown
        # (round 1's served 7B streamed mostly empty text, so its time to first token meant nothing)
        model.lm_head.weight.data[tokenizer.get_vocab_size():] = 0
    model.save_pretrained(out, max_shard_size="5GB")
    GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, max_new_tokens=256
    ).save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    tok = sub.add_parser("tokenizer")
    tok.add_argument("--data", type=Path, required=True)
    tok.add_argument("--out", type=Path, required=True)
    tok.add_argument("--vocab-size", type=int, default=32000)
    mod = sub.add_parser("model")
    mod.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "tokenizer":
        print(f"tokenizer: {build_tokenizer(args.data, args.out, args.vocab_size)} tokens -> {args.out}")
    else:
        print(f"model: {build_model(args.out) / 1e9:.2f}B parameters -> {args.out}")


if __name__ == "__main__":
    main()
