#!/usr/bin/env bash
# Sourced by run.sh (training) and serve.sh (serving): the GPU box's environment, and
#   prepare_box WHEELS_DIR TOKENIZER_DIR
# which builds the envs (/tmp/envs, from bench/gpu/fetch_wheels.sh's wheels) and the random 7B-shaped
# model (/tmp/Qwen2.5-7B-Instruct) on the first call; later calls on the same box reuse them.
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
repo=$(realpath "$here/../..")
model=/tmp/Qwen2.5-7B-Instruct
export STYLEWRAP_ENVS_DIR=/tmp/envs PATH=/tmp/envs/core/bin:$PATH PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# multi-GPU boxes shared with others: never use NVLink multicast
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

prepare_box() {
    local wheels=$1 tokenizer=$2 env
    [ -x /tmp/envs/core/bin/stylewrap ] || bash "$here/setup_env.sh" "$wheels" "$repo" || return 1
    # an env kept from an earlier call still gets this checkout's stylewrap and probe
    /tmp/envs/core/bin/python -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir "$repo" || return 1
    for env in llamafactory swift; do
        cp "$here/gpubench_probe.py" /tmp/envs/$env/lib/python3*/site-packages/
        # QLoRA's bitsandbytes, when its wheel came later than the envs
        if ls "$wheels"/qlora/*.whl >/dev/null 2>&1 && ! /tmp/envs/$env/bin/python -c 'import bitsandbytes' 2>/dev/null; then
            /tmp/envs/$env/bin/python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$wheels"/qlora/*.whl || return 1
        fi
    done
    if [ ! -f $model/config.json ]; then
        mkdir -p $model && cp "$tokenizer"/* $model/ && python3 "$here/model7b.py" model --out $model || return 1
    fi
}
