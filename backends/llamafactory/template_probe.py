"""The run's conversation as LLaMA-Factory tokenizes it: `template_probe.py SPEC_JSON`.

Runs inside the llamafactory env through `stylewrap.runner.script_invocation` (it imports nothing
from stylewrap). Training rows go through LLaMA-Factory's own `get_template_and_fix_tokenizer` and
`SupervisedDatasetProcessor._encode_data_example` (what `llamafactory-cli train` does to every row,
mask_history included); the prompt a served model sees goes through `encode_oneturn` with an empty
answer, as its chat engine does. Prints one JSON object: {"train": {...}, "prompt": {...}}.
"""

import json
import sys


def main(spec_json: str) -> None:
    from transformers import AutoTokenizer
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.hparams import DataArguments

    spec = json.loads(spec_json)
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    data_args = DataArguments(template=spec["template"], cutoff_len=1 << 20, **spec.get("options", {}))
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    messages = spec["messages"]
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    turns = [m for m in messages if m["role"] != "system"]
    processor = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
    input_ids, labels = processor._encode_data_example(turns[:-1], turns[-1:], system, None, [], [], [])
    trained = [token for token in labels if token != IGNORE_INDEX]
    prompt_ids, _ = template.encode_oneturn(tokenizer, turns[:-1] + [{"role": "assistant", "content": ""}], system)
    decode = lambda ids: [tokenizer.decode([token]) for token in ids]  # noqa: E731
    print(json.dumps({
        "train": {"ids": input_ids, "tokens": decode(input_ids), "text": tokenizer.decode(input_ids),
                  "trained_text": tokenizer.decode(trained)},
        "prompt": {"ids": prompt_ids, "tokens": decode(prompt_ids), "text": tokenizer.decode(prompt_ids)},
        "stop_words": list(template.stop_words) or [tokenizer.eos_token],
        "default_system": template.default_system,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
