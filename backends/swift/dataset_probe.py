"""What ms-swift's `--dataset NAME` names: `dataset_probe.py SPEC_JSON`.

Runs inside the swift env through `stylewrap.runner.script_invocation` (it imports nothing from
stylewrap). The name goes through ms-swift's own `DatasetSyntax.parse(...).get_dataset_meta` (the
`hf::`/`ms::` prefix, `:subset`, `#sample`, and a registered name matched by its last part, as
`swift sft --dataset` does), with `--custom_dataset_info` files registered first. Prints one JSON
object: {"registered", "path", "hub": {"modelscope": id, "huggingface": id}, "subsets"} or {"error"}.
"""

import json
import sys


def main(spec_json: str) -> None:
    from swift.dataset import register_dataset_info
    from swift.dataset.dataset_syntax import DatasetSyntax

    spec = json.loads(spec_json)
    if spec.get("registry"):
        register_dataset_info(spec["registry"])
    syntax = DatasetSyntax.parse(spec["name"])
    meta = syntax.get_dataset_meta(bool(syntax.use_hf))
    registered = any((meta.ms_dataset_id, meta.hf_dataset_id, meta.dataset_path))
    subsets = syntax.subsets or [s.subset for s in meta.subsets if s.subset != "default"]
    print(json.dumps({
        "registered": registered,
        "path": meta.dataset_path or (syntax.dataset if syntax.dataset_type == "path" else None),
        "hub": {"modelscope": meta.ms_dataset_id or (None if registered or syntax.use_hf else syntax.dataset),
                "huggingface": meta.hf_dataset_id or (syntax.dataset if syntax.use_hf and not registered else None)},
        "subsets": subsets,
    }, ensure_ascii=False))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (KeyError, ValueError) as exc:
        print(json.dumps({"error": f"ms-swift cannot read the dataset name: {exc}"}))
