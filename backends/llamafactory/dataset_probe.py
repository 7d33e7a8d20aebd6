"""What LLaMA-Factory's `dataset: NAME` names: `dataset_probe.py SPEC_JSON`.

Runs inside the llamafactory env through `stylewrap.runner.script_invocation` (it imports nothing
from stylewrap). The name goes through LLaMA-Factory's own `get_dataset_list([name], dataset_dir)`,
which reads `dataset_dir/dataset_info.json` as `llamafactory-cli train` does (file_name, or the
ModelScope / Hugging Face id it would download). Prints one JSON object:
{"registered", "path", "hub": {"modelscope": id, "huggingface": id}, "subsets", "formatting"} or {"error"}.
"""

import json
import os
import sys


def main(spec_json: str) -> None:
    from llamafactory.data.parser import get_dataset_list

    spec = json.loads(spec_json)
    dataset_dir = os.path.dirname(spec["registry"])
    (attr,) = get_dataset_list([spec["name"]], dataset_dir)
    with open(spec["registry"], encoding="utf-8") as handle:
        entry = json.load(handle)[spec["name"]]
    print(json.dumps({
        "registered": True,
        "path": os.path.join(dataset_dir, attr.dataset_name) if attr.load_from == "file" else None,
        "hub": {"modelscope": entry.get("ms_hub_url"), "huggingface": entry.get("hf_hub_url")},
        "subsets": [attr.subset] if attr.subset else [],
        "formatting": attr.formatting,
    }, ensure_ascii=False))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (KeyError, ValueError, OSError) as exc:
        print(json.dumps({"error": f"LLaMA-Factory cannot read the dataset name: {exc}"}))
