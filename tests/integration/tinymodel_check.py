"""Runs inside a backend env: loads the tiny model with transformers, generates, and encodes one
conversation with the tokenizer's own chat template and with the backend's `qwen` template.
Prints one JSON object. Usage: python tinymodel_check.py MODEL_DIR {llamafactory|swift}"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, backend = sys.argv[1], sys.argv[2]
conversation = [
    {"role": "system", "content": "你是一个说话带翻译腔的助手。"},
    {"role": "user", "content": "你有宠物吗？"},
    {"role": "assistant", "content": "噢，我亲爱的朋友，我发誓我有一只猫！"},
]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)
prompt = tokenizer.apply_chat_template(conversation[:2], add_generation_prompt=True, return_tensors="pt", return_dict=True)
with torch.no_grad():
    generated = model.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
own_ids = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"]

if backend == "llamafactory":
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments

    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template="qwen"))
    prompt_ids, answer_ids = template.encode_oneturn(tokenizer, conversation[1:], system=conversation[0]["content"])
    backend_ids = prompt_ids + answer_ids
    no_system_ids = sum(template.encode_oneturn(tokenizer, conversation[1:]), [])
else:
    from swift.model import get_processor
    from swift.template import get_template

    processor = get_processor(model_dir, model_type="qwen2")
    template = get_template(processor, template_type="qwen")
    template.set_mode("train")
    backend_ids = template.encode({"messages": conversation})["input_ids"]
    no_system_ids = template.encode({"messages": conversation[1:]})["input_ids"]

print(
    json.dumps(
        {
            "tokenizer_class": type(tokenizer).__name__,
            "eos_token": tokenizer.eos_token,
            "new_tokens": generated.shape[1] - prompt["input_ids"].shape[1],
            "round_trip": tokenizer.decode(own_ids, skip_special_tokens=False),
            "own_ids": list(own_ids),
            "backend_ids": list(backend_ids),
            "no_system_rendering": tokenizer.decode(no_system_ids, skip_special_tokens=False),
        },
        ensure_ascii=False,
    )
)
