#!/usr/bin/env bash
# The GPU benchmark in one command, on a box with no internet:
#   bench/gpu/run.sh 1gpu|2gpu WHEELS_DIR TOKENIZER_DIR TslDial.json OUT_DIR [RUN_NAME...]
# WHEELS_DIR comes from bench/gpu/fetch_wheels.sh, TOKENIZER_DIR from `model7b.py tokenizer`. The
# first call builds the envs (/tmp/envs) and the random 7B-shaped model (/tmp/Qwen2.5-7B-Instruct);
# later calls on the same box reuse them. Results: OUT_DIR/results-<mode>.json and logs-<mode>.tgz.
# Each run is repeated GPUBENCH_REPEAT times (default 3: median and spread); the exit status is
# non-zero when any run failed.
set -uo pipefail
mode=$1 wheels=$2 tokenizer=$3 data=$4 out=$5; shift 5
here=$(dirname "$(realpath "$0")")
repo=$(realpath "$here/../..")
model=/tmp/Qwen2.5-7B-Instruct
export STYLEWRAP_ENVS_DIR=/tmp/envs PATH=/tmp/envs/core/bin:$PATH PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# multi-GPU boxes shared with others: never use NVLink multicast
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
[ -x /tmp/envs/core/bin/stylewrap ] || bash "$here/setup_env.sh" "$wheels" "$repo" || exit 1
# an env kept from an earlier call still gets this checkout's stylewrap and probe
/tmp/envs/core/bin/python -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir "$repo" || exit 1
for env in llamafactory swift; do
    cp "$here/gpubench_probe.py" /tmp/envs/$env/lib/python3*/site-packages/
    # QLoRA's bitsandbytes, when its wheel came later than the envs
    if ls "$wheels"/qlora/*.whl >/dev/null 2>&1 && ! /tmp/envs/$env/bin/python -c 'import bitsandbytes' 2>/dev/null; then
        /tmp/envs/$env/bin/python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$wheels"/qlora/*.whl || exit 1
    fi
done
if [ ! -f $model/config.json ]; then
    mkdir -p $model && cp "$tokenizer"/* $model/ && python3 "$here/model7b.py" model --out $model || exit 1
fi
mkdir -p "$out"
/tmp/envs/core/bin/python "$here/bench.py" "$mode" --model $model --data "$(realpath "$data")" --out "$out" \
    --repeat "${GPUBENCH_REPEAT:-3}" ${1:+--only "$@"}
status=$?
tar czf "$out/logs-$mode.tgz" -C "/tmp/gpubench-logs-$mode" . 2>/dev/null
exit $status
