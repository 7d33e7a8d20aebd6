"""A conversation through a model folder's own tokenizer `chat_template` (what vLLM, SGLang,
transformers' pipelines and a merged model's users apply): `_chat_template_probe.py SPEC_JSON`.

Runs inside a backend env through `stylewrap.runner.script_invocation` (it imports only
transformers). Prints {"full": {...}, "prompt": {...}}: the whole conversation, and the prompt
before the last answer with the generation prompt added.
"""

import json
import sys


def main(spec_json: str) -> None:
    from transformers import AutoTokenizer

    spec = json.loads(spec_json)
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    if not tokenizer.chat_template:
        print(json.dumps({"error": f"{spec['model']} has no chat_template in its tokenizer files"}))
        return
    messages, kwargs = spec["messages"], spec.get("template_kwargs", {})

    def render(turns, generation_prompt):
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt, **kwargs)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return {"ids": ids, "tokens": [tokenizer.decode([token]) for token in ids], "text": text}

    print(json.dumps({"full": render(messages, False), "prompt": render(messages[:-1], True)}, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
