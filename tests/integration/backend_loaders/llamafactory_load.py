"""Run with LLaMA-Factory's python: parse dataset_info.json and convert rows with LLaMA-Factory's own code.

argv: DATASET_DIR NAME [NAME ...]. Prints one JSON object: name -> list of aligned rows
(_prompt, _response, _system, _tools), what LLaMA-Factory's template receives.

It uses llamafactory.data.parser (dataset_info.json -> DatasetAttr), `datasets.load_dataset("json")`
exactly as loader._load_single_dataset does for a local file, and llamafactory.data.converter
(align_dataset). The `llamafactory.data` package __init__ is bypassed because it imports the
multimodal plugin (torchaudio), and torchvision is hidden from transformers: in the 0.9.5 env both
fail to load against torch 2.13, and neither has a part in reading text datasets.
"""

import importlib.util
import json
import os
import sys
import types

sys.modules["torchvision"] = None
_root = importlib.util.find_spec("llamafactory").submodule_search_locations[0]
_data_pkg = types.ModuleType("llamafactory.data")
_data_pkg.__path__ = [os.path.join(_root, "data")]
sys.modules["llamafactory.data"] = _data_pkg

from datasets import load_dataset  # noqa: E402
from llamafactory.data.converter import align_dataset  # noqa: E402
from llamafactory.data.parser import get_dataset_list  # noqa: E402
from llamafactory.hparams import DataArguments  # noqa: E402


class _TrainingArgs:  # align_dataset reads only this field of Seq2SeqTrainingArguments
    local_process_index = 0


dataset_dir, names = sys.argv[1], sys.argv[2:]
result = {}
for attr in get_dataset_list(names, dataset_dir):
    local_path = os.path.join(dataset_dir, attr.dataset_name)
    dataset = load_dataset("json", data_files=[local_path], split=attr.split)
    aligned = align_dataset(dataset, attr, DataArguments(dataset_dir=dataset_dir), _TrainingArgs())
    result[names[len(result)]] = [{k: row[k] for k in ("_prompt", "_response", "_system", "_tools")} for row in aligned]
print(json.dumps(result, ensure_ascii=False))
