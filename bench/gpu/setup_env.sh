#!/usr/bin/env bash
# Builds stylewrap's and the two backends' environments on a GPU box that has no internet, from wheels
# fetched beforehand by bench/gpu/fetch_wheels.sh. Each env is a venv whose own site-packages (the
# backend's pinned transformers/datasets/peft/trl...) shadows the machine's CUDA torch stack, which it
# reaches through a .pth line, so nothing CUDA is carried.
#   bench/gpu/setup_env.sh WHEELS_DIR SRC_DIR        (envs go to $STYLEWRAP_ENVS_DIR, default /tmp/envs)
set -euo pipefail
wheels=$(realpath "$1")
src=$(realpath "$2")
envs=${STYLEWRAP_ENVS_DIR:-/tmp/envs}
here=$(dirname "$(realpath "$0")")
machine_site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

make_env() {
    local name=$1; shift
    python3 -m venv --without-pip "$envs/$name"
    local site
    site=$("$envs/$name/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$machine_site')" >"$site/zz_machine_site.pth"
    "$envs/$name/bin/python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$@"
    cp "$here/gpubench_probe.py" "$site/"
    echo "import gpubench_probe" >"$site/gpubench_probe.pth"
    # launchers find torchrun on PATH: make it this env's python, not the machine's
    printf '#!%s\nfrom torch.distributed.run import main\nmain()\n' "$envs/$name/bin/python" >"$envs/$name/bin/torchrun"
    chmod +x "$envs/$name/bin/torchrun"
}

qlora=$(ls "$wheels"/qlora/*.whl 2>/dev/null || true)
# shellcheck disable=SC2086  # no QLoRA wheel carried: nothing added
make_env llamafactory "$wheels"/common/*.whl "$wheels"/ds/*.whl "$wheels"/lf/*.whl $qlora
# shellcheck disable=SC2086
make_env swift "$wheels"/common/*.whl "$wheels"/ds/*.whl "$wheels"/sw/*.whl $qlora
make_env core "$wheels"/core/*.whl
"$envs/core/bin/python" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir "$src"
echo "envs ready under $envs"
