#!/usr/bin/env bash
# Fetches, on a machine with PyPI, every wheel bench/gpu/setup_env.sh installs on a GPU box with no
# internet whose image already has torch (CUDA), triton, accelerate, transformers, peft, tokenizers,
# numpy, pandas, pyarrow, aiohttp, click, jinja2, pyyaml, rich (checked on the H200 image: Python
# 3.12, torch 2.11 cu130, transformers 5.17, peft 0.21). Each backend gets its own pins: llamafactory
# 0.9.5 needs transformers<=5.6.0, datasets<=4.0.0, peft<=0.18.1, accelerate<=1.11.0; ms-swift 4.6.0
# keeps the image's transformers but needs peft<0.21. DeepSpeed publishes no wheel: it is built here
# with its CUDA ops left to compile on first use (DS_BUILD_OPS=0; needs a Python with torch).
# stylewrap's own env (core/) is not a hand-kept list: bench/gpu/wheels.py derives it from stylewrap's
# package metadata (pyproject's dependencies and theirs), run by a python stylewrap is installed in.
# bitsandbytes (qlora/) is only for the QLoRA runs.
#   bench/gpu/fetch_wheels.sh OUT_DIR [PYTHON_WITH_TORCH] [PYTHON_WITH_STYLEWRAP]
set -euo pipefail
here=$(dirname "$(realpath "$0")")
out=$1 builder=${2:-python3} core_python=${3:-python3}
fetch() {
    local dir=$out/$1; shift
    mkdir -p "$dir"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$dir" "$@"
}
core=$("$core_python" "$here/wheels.py")
# shellcheck disable=SC2086  # one requirement per word
fetch core $core
fetch qlora bitsandbytes==0.50.2
# only its CUDA 13 libraries (the image's torch is cu130): 43 MB -> about 8 MB
python3 "$here/wheels.py" thin "$out"/qlora/bitsandbytes-*.whl 'libbitsandbytes_(cuda1[0-2][0-9]|rocm[0-9]+)\.so$'
fetch common pydantic==2.12.3 pydantic_core==2.41.4 annotated-types==0.8.0 typing-inspection==0.4.5 \
    jsonlines==4.0.0 fastapi==0.163.2 starlette==0.52.1 sse-starlette==3.7.0 uvicorn==0.54.0 \
    opentelemetry-api==1.45.2 liger-kernel==0.8.5
fetch lf llamafactory==0.9.5 transformers==5.6.0 tokenizers==0.22.2 accelerate==1.11.0 peft==0.18.1 \
    trl==0.24.0 datasets==4.0.0 dill==0.3.8 multiprocess==0.70.16 tyro==0.8.14 docstring_parser==0.18.0 \
    shtab==1.13.0 fire==0.7.1 termcolor==3.3.0 omegaconf==2.4.0 torchdata==0.11.0
fetch sw ms_swift==4.6.0 peft==0.20.0 trl==0.29.1 datasets==4.8.4 dill==0.4.1 multiprocess==0.70.19 \
    addict==2.4.0 attrdict==2.0.1 binpacking==2.0.1 cpm-kernels==1.0.11 dacite==1.9.2 json_repair==0.64.6 \
    importlib_metadata==10.2.0 zstandard==0.25.0 modelscope==1.40.2 modelscope-hub==0.5.1 \
    cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
fetch ds hjson==3.1.0
DS_BUILD_OPS=0 "$builder" -m pip wheel -q --no-deps --no-build-isolation deepspeed==0.18.9 -w "$out/ds"
du -sh "$out"
