"""Build the tiny demo model. Runs INSIDE a backend env's python (it needs torch, transformers and
tokenizers, which the stylewrap core does not install), as a script that imports nothing from
stylewrap (started by `stylewrap.runner.script_invocation`):

    _tinymodel_build.py OUT_DIR CHATS_JSONL TOKENIZER_TEXT WORDS

CHATS_JSONL holds the pretraining chats ({"messages": [...]} per line), TOKENIZER_TEXT every line
the tokenizer must encode whole (the chats' text and the styled answers the demo teaches later),
WORDS the words that get a token of their own (the grammar's slot words, one per line): a model
this small learns to copy one token from the question into its answer, not a run of characters.
The model is pretrained on the chats, rendered with its own ChatML template, on the CPU.
`stylewrap.tinymodel.build_tiny_model` is the entry point; it writes both files.
"""

import json
import math
import random
import re
import sys
import time
from pathlib import Path

SEED = 1234
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Qwen2's pre-tokenizer split: words, numbers one digit at a time, punctuation runs, newlines.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Each listed word, else each CJK character or CJK punctuation mark alone: BPE then merges only
# the bytes of one word or character, so each is one token and no merge crosses them.
# Qwen2Tokenizer, which every backend loads, splits with QWEN2_SPLIT alone; it encodes the same
# tokens, since no merge exists across those pieces.
ONE_CJK_CHARACTER = r"[\p{Han}\u3000-\u303f\uff00-\uffef]"
# ChatML, the format of Qwen2 chat models: what LLaMA-Factory's `qwen` and ms-swift's `qwen`
# templates produce, so the tokenizer's own template agrees with both backends.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
MODEL_SHAPE = dict(
    hidden_size=128,
    intermediate_size=320,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)
# Pretraining: packed blocks of the chat stream, AdamW with a cosine schedule; sized to finish
# in about a minute on two CPU cores.
BLOCK, BATCH, EPOCHS, PEAK_LR, WARMUP = 128, 16, 4, 9e-3, 20
# How much more an answer's slot word counts in the loss than its other tokens. Copying the
# question's word is the one choice an answer frame leaves open; unweighted, a model this small
# learns the frames and guesses the word (12-13 of the 24 held-out probes kept it), weighted it
# copies (22-23 of 24) in the same steps.
SLOT_WEIGHT = 8.0


def train_tokenizer(lines: list[str], words: list[str]):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.Split(Regex(one_piece(words)), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096,  # more than the corpus can fill: every character and word gets its token
        min_frequency=1,
        special_tokens=[ENDOFTEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


def one_piece(words: list[str]) -> str:
    longest_first = sorted(words, key=len, reverse=True)
    return "|".join([*map(re.escape, longest_first), ONE_CJK_CHARACTER])


def make_tokenizer(lines: list[str], words: list[str]):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(lines, words),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def packed_blocks(tokenizer, chats: list[list[dict]]):
    """The chats rendered with the model's own template, one token stream cut into blocks, and
    its labels: the answers and their <|im_end|> only (-100 elsewhere), as the backends train."""
    import torch

    stream, labels = [], []
    for messages in chats:
        prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=True)
        whole = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        answer_start = len(prompt["input_ids"])
        stream.extend(whole)
        labels.extend([-100] * answer_start + whole[answer_start:])
    usable = len(stream) // BLOCK * BLOCK
    return torch.tensor(stream[:usable]).view(-1, BLOCK), torch.tensor(labels[:usable]).view(-1, BLOCK)


def pretrain(model, blocks, labels, token_weights, log) -> None:
    """Next-token loss on the labelled tokens, each weighted by its token's `token_weights`."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(SEED)
    steps = EPOCHS * math.ceil(len(blocks) / BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=0.01, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    )
    model.train()
    step, started = 0, time.monotonic()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(blocks), generator=generator)
        for start in range(0, len(blocks), BATCH):
            chosen = order[start:start + BATCH]
            logits = model(input_ids=blocks[chosen]).logits[:, :-1]
            targets = labels[chosen][:, 1:]
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), weight=token_weights, ignore_index=-100)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 20 == 0 or step == steps:
                log(f"pretraining step {step}/{steps} epoch {epoch + 1} loss {loss.item():.3f} ({time.monotonic() - started:.0f} s)")
    model.eval()


def save_tokenizer(out_dir: Path, lines: list[str], words: list[str]):
    """Train and save the tokenizer, then load it back the way every backend will (Qwen2Tokenizer)."""
    from transformers import AutoTokenizer

    make_tokenizer(lines, words).save_pretrained(out_dir)
    # `Qwen2Tokenizer` is the class every transformers version resolves for model_type qwen2; the
    # template also goes into tokenizer_config.json for readers that ignore chat_template.jinja.
    tokenizer_config = out_dir / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    settings["tokenizer_class"] = "Qwen2Tokenizer"
    settings["chat_template"] = CHAT_TEMPLATE
    tokenizer_config.write_text(json.dumps(settings, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    split = [word for word in words if len(tokenizer.tokenize(word)) != 1]
    if split:
        sys.exit(f"the tokenizer splits words it should keep whole: {split[:5]}")
    return tokenizer


def read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build(out_dir: Path, chats_file: Path, text_file: Path, words_file: Path) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    random.seed(SEED)
    # One thread: the matrices are 128 wide, too small for a second thread to pay off, and on a
    # busy machine two threads wait for each other (measured: 7 s a step with two, 0.5 s with one).
    torch.set_num_threads(1)
    log = lambda line: print(f"tinymodel: {line}", flush=True)  # noqa: E731  (stylewrap.tinymodel.PROGRESS_PREFIX)
    chats = [json.loads(line)["messages"] for line in read_lines(chats_file)]
    words = read_lines(words_file)
    tokenizer = save_tokenizer(out_dir, read_lines(text_file), words)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (ENDOFTEXT, IM_START, IM_END)}
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
        **MODEL_SHAPE,
    )
    model = Qwen2ForCausalLM(config).to(torch.float32)
    blocks, labels = packed_blocks(tokenizer, chats)
    log(f"tokenizer: {len(tokenizer)} tokens; pretraining on {len(chats)} chats, {blocks.numel()} tokens")
    token_weights = torch.ones(len(tokenizer))
    token_weights[tokenizer.convert_tokens_to_ids([tokenizer.tokenize(word)[0] for word in words])] = SLOT_WEIGHT
    pretrain(model, blocks, labels, token_weights, log)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[ENDOFTEXT], eos_token_id=ids[IM_END], pad_token_id=ids[ENDOFTEXT], do_sample=False
    )
    model.save_pretrained(out_dir, safe_serialization=True)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: _tinymodel_build.py OUT_DIR CHATS_JSONL TOKENIZER_TEXT WORDS")
    build(*map(Path, sys.argv[1:]))
