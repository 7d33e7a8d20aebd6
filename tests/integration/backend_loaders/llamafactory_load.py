"""Run with LLaMA-Factory's python: load registered datasets through its own loader, print JSON.

argv: [--stage STAGE] [--count] DATASET_DIR NAME [NAME ...]. Prints one JSON object: name -> list of aligned rows
(_prompt, _response, _system, _tools), what LLaMA-Factory's template receives; with --count
(bench/data.py) name -> number of rows instead. The path is LLaMA-Factory's own: dataset_info.json
parsed by data/parser.py, the file read by `load_dataset("json")`, rows aligned by data/converter.py.
"""

import json
import sys
import tempfile

from llamafactory.data.loader import _get_merged_dataset
from llamafactory.hparams import DataArguments, ModelArguments
from transformers import Seq2SeqTrainingArguments

args = sys.argv[1:]
# --stage rm reads ranking (pairwise) datasets, --stage kto KTO's labelled rows; sft by default
stage = args.pop(args.index("--stage") + 1) if "--stage" in args else "sft"
args = [a for a in args if a != "--stage"]
count_only = args[0] == "--count"
dataset_dir, *names = args[1:] if count_only else args
result = {}
with tempfile.TemporaryDirectory() as out:
    training_args = Seq2SeqTrainingArguments(output_dir=out, report_to=[])
    for name in names:
        data_args = DataArguments(dataset=[name], dataset_dir=dataset_dir)
        dataset = _get_merged_dataset([name], ModelArguments(model_name_or_path="unused"), data_args, training_args, stage=stage)
        rows = len(dataset) if count_only else [{k: row[k] for k in ("_prompt", "_response", "_system", "_tools")} for row in dataset]
        result[name] = rows
print(json.dumps(result, ensure_ascii=False))
