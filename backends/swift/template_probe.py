"""The run's conversation as ms-swift tokenizes it: `template_probe.py SPEC_JSON`.

Runs inside the swift env through `stylewrap.runner.script_invocation` (it imports nothing from
stylewrap). Training rows go through ms-swift's own `get_template(...).encode` in 'train' mode
(loss_scale and the thinking options as `swift sft` passes them); the prompt a served model sees
is the same template in 'transformers' mode without the last answer, as `swift deploy` encodes it.
Prints one JSON object: {"train": {...}, "prompt": {...}}.
"""

import json
import sys


def main(spec_json: str) -> None:
    from swift.model import get_processor
    from swift.template import get_template

    spec = json.loads(spec_json)
    processor = get_processor(spec["model"], model_type=spec.get("model_type"), download_model=False)
    messages = spec["messages"]
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    template = get_template(processor, system, template_type=spec["template"], **spec.get("options", {}))
    template.set_mode("train")
    encoded = template.encode({"messages": messages})
    input_ids, labels = encoded["input_ids"], encoded["labels"]
    trained = [token for token in labels if token != -100]
    template.set_mode("transformers")
    prompt_ids = template.encode({"messages": messages[:-1]})["input_ids"]
    tokenizer = template.tokenizer
    decode = lambda ids: [tokenizer.decode([token]) for token in ids]  # noqa: E731
    stop_words = [word for word in (template.template_meta.stop_words or []) if isinstance(word, str)]
    print(json.dumps({
        "train": {"ids": input_ids, "tokens": decode(input_ids), "text": tokenizer.decode(input_ids),
                  "trained_text": tokenizer.decode(trained)},
        "prompt": {"ids": prompt_ids, "tokens": decode(prompt_ids), "text": tokenizer.decode(prompt_ids)},
        "stop_words": stop_words or [tokenizer.eos_token],
        "default_system": template.template_meta.default_system,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
