"""Greedy answers from LLaMA-Factory's own chat engine, for `stylewrap compare`: `predict.py infer.yaml`.

Runs inside the llamafactory env through `stylewrap.runner.script_invocation` (it imports nothing
from stylewrap). `llamafactory-cli train` with
`do_predict` would need the metrics extras (jieba, nltk, rouge-chinese) just to score answers we
only want to read, so this drives `llamafactory.chat.ChatModel` with the same YAML keys instead.
Keys of its own: `probes_file` (messages JSONL) and `predictions_file` (JSONL of {"response"}).
"""

import json
import sys


def main(config_file: str) -> None:
    import yaml
    from llamafactory.chat import ChatModel

    with open(config_file, encoding="utf-8") as handle:
        args = yaml.safe_load(handle)
    probes_file, predictions_file = args.pop("probes_file"), args.pop("predictions_file")
    model = ChatModel(args)
    with open(probes_file, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    with open(predictions_file, "w", encoding="utf-8") as out:
        for row in rows:
            messages = row["messages"]
            system = next((m["content"] for m in messages if m["role"] == "system"), None)
            turns = [m for m in messages if m["role"] != "system"]
            answer = model.chat(turns, system=system)[0].response_text
            out.write(json.dumps({"response": answer, "messages": messages}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
