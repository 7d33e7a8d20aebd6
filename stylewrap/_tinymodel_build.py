"""Build the tiny test model. Runs INSIDE a backend env's python (it needs torch, transformers and
tokenizers, which the stylewrap core does not install), as a script that imports nothing from
stylewrap (see `stylewrap.backends.envs.env_script_invocation`):

    _tinymodel_build.py OUT_DIR CORPUS_FILE...

`stylewrap.tinymodel.build_tiny_model` is the entry point.
"""

import json
import sys
from pathlib import Path

SEED = 1234
VOCAB_SIZE = 1536
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Qwen2's pre-tokenizer split: words, numbers one digit at a time, punctuation runs, newlines.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# ChatML, the format of Qwen2 chat models: what LLaMA-Factory's `qwen` and ms-swift's `qwen`
# templates produce, so the tokenizer's own template agrees with both backends.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
MODEL_SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)


def corpus_lines(path: Path):
    """Text lines of a plain text file, or every string value of a JSON / JSONL file's rows."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif path.suffix == ".json":
        rows = json.loads(text)
    else:
        yield from (line for line in text.splitlines() if line.strip())
        return
    for row in rows:
        values = row.values() if isinstance(row, dict) else [row]
        yield from (value for value in values if isinstance(value, str) and value.strip())


def train_tokenizer(corpus: list[Path]):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[ENDOFTEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((line for path in corpus for line in corpus_lines(path)), trainer=trainer)
    return tokenizer


def build(out_dir: Path, corpus: list[Path]) -> None:
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(corpus),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (ENDOFTEXT, IM_START, IM_END)}
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
        **MODEL_SHAPE,
    )
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[ENDOFTEXT], eos_token_id=ids[IM_END], pad_token_id=ids[ENDOFTEXT], do_sample=False
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    # `Qwen2Tokenizer` is the class every transformers version resolves for model_type qwen2; the
    # template also goes into tokenizer_config.json for readers that ignore chat_template.jinja.
    tokenizer_config = out_dir / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    settings["tokenizer_class"] = "Qwen2Tokenizer"
    settings["chat_template"] = CHAT_TEMPLATE
    tokenizer_config.write_text(json.dumps(settings, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: _tinymodel_build.py OUT_DIR CORPUS_FILE...")
    build(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
