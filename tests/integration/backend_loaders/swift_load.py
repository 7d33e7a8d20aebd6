"""Run with ms-swift's python: register a --custom_dataset_info file and load datasets with swift's loader.

argv: CUSTOM_DATASET_INFO NAME [NAME ...]. Prints name -> list of {messages, tools} rows.
"""

import json
import sys

from swift.dataset import load_dataset, register_dataset_info

info, names = sys.argv[1], sys.argv[2:]
register_dataset_info(info)
result = {}
for name in names:
    train, _ = load_dataset([name], split_dataset_ratio=0.0, num_proc=1, load_from_cache_file=False)
    # preference rows keep their rejected answer / KTO label columns
    result[name] = [{"messages": row["messages"], "tools": row.get("tools"),
                     **{key: row[key] for key in ("rejected_response", "label") if row.get(key) is not None}}
                    for row in train]
print(json.dumps(result, ensure_ascii=False, default=str))
