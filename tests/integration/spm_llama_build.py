"""A tiny Llama with a SentencePiece tokenizer, random weights: `spm_llama_build.py OUT CORPUS_JSONL`.

Run in the llamafactory env (sentencepiece, torch, transformers). llama.cpp's converter reads a
SentencePiece `tokenizer.model` directly; stylewrap's own tiny model has a BPE tokenizer whose
pre-tokenizer llama.cpp does not list, so the GGUF test needs this one.
"""
import json, sys
from pathlib import Path
import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

out, corpus = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
lines = []
for line in corpus.read_text(encoding="utf-8").splitlines()[:2000]:
    row = json.loads(line)
    lines += [row["问"], row["答"]]
(out / "corpus.txt").write_text("\n".join(lines), encoding="utf-8")
spm.SentencePieceTrainer.train(input=str(out / "corpus.txt"), model_prefix=str(out / "tokenizer"), vocab_size=3000,
                               model_type="bpe", character_coverage=0.9995, byte_fallback=True,
                               user_defined_symbols=["<|im_start|>", "<|im_end|>"], bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
for scratch in ("corpus.txt", "tokenizer.vocab"):
    (out / scratch).unlink()
tokenizer = LlamaTokenizer.from_pretrained(out)   # converts the SentencePiece model (transformers 5)
tokenizer.chat_template = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
                           "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
tokenizer.save_pretrained(out)
torch.manual_seed(0)
config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                     bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
LlamaForCausalLM(config).save_pretrained(out)
print(sorted(p.name for p in out.iterdir()))
