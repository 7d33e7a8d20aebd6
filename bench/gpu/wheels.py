"""The wheels stylewrap's own env needs on a GPU box with no internet, derived from package metadata.

stylewrap's requirements (its installed METADATA, i.e. pyproject's `dependencies`) and theirs in turn,
without extras, for CPython 3.12 on Linux x86_64, minus what the box's image already has
(IMAGE_PACKAGES, read off the H200 image), each pinned at the version installed where this runs.
bench/gpu/fetch_wheels.sh downloads exactly this list; tests/unit/test_gpu_wheels.py checks that it
covers every module stylewrap imports. A dependency added to pyproject reaches the GPU box by itself.

    python bench/gpu/wheels.py            # name==version per line (run with the python stylewrap is installed in)
    python bench/gpu/wheels.py thin WHEEL REGEX   # drop the wheel's files matching REGEX (see thin())
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
import zipfile

from packaging.markers import default_environment
from packaging.requirements import Requirement

# what the GPU box's python runs (bench/gpu/run.sh uses the image's python3)
TARGET = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
          "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython"}

# The H200 image's python packages ('cuda' image, /work/.library/device/KINDS.md, read 2026-11-17):
# the names a wheel need not be carried for.
IMAGE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite
lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec
patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_of(distribution: str) -> list[str]:
    """The distributions `distribution` needs on the target, extras left out."""
    needed = []
    for line in metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({**TARGET, "extra": ""}):
            needed.append(normalized(requirement.name))
    return needed


def wheels_for(root: str = "stylewrap", image: frozenset[str] = IMAGE_PACKAGES) -> dict[str, str]:
    """name -> installed version of every distribution `root` needs, transitively, that the image lacks.
    A needed distribution that is not installed here cannot be pinned: that is an error, not a gap."""
    pinned: dict[str, str] = {}
    missing = []
    queue = requirements_of(root)
    while queue:
        name = queue.pop()
        if name in pinned or name in image:
            continue
        try:
            pinned[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        queue.extend(requirements_of(name))
    if missing:
        raise SystemExit(f"not installed here, so no version to pin: {', '.join(sorted(set(missing)))} "
                         f"(run with the python {root} is installed in)")
    return dict(sorted(pinned.items()))


def thin(wheel: str, drop: str) -> int:
    """Rewrites `wheel` without its files matching `drop` (and their RECORD lines); returns the bytes
    saved. bitsandbytes ships one 20-26 MB library per CUDA release (129 MB unpacked, 43 MB packed);
    the box's torch is CUDA 13, so the others only eat into the 64 MiB a device call carries."""
    pattern = re.compile(drop)
    before = os.path.getsize(wheel)
    with zipfile.ZipFile(wheel) as source:
        kept = [info for info in source.infolist() if not pattern.search(info.filename)]
        contents = {info.filename: source.read(info) for info in kept}
    for name in contents:
        if name.endswith(".dist-info/RECORD"):
            lines = contents[name].decode().splitlines()
            contents[name] = ("\n".join(line for line in lines if not pattern.search(line.split(",")[0])) + "\n").encode()
    with zipfile.ZipFile(wheel + ".tmp", "w", zipfile.ZIP_DEFLATED) as target:
        for info in kept:
            target.writestr(info, contents[info.filename])
    os.replace(wheel + ".tmp", wheel)
    return before - os.path.getsize(wheel)


def main() -> None:
    if sys.argv[1:2] == ["thin"]:
        print(f"{sys.argv[2]}: {thin(sys.argv[2], sys.argv[3]) / 1e6:.1f} MB smaller")
        return
    root = sys.argv[1] if len(sys.argv) > 1 else "stylewrap"
    for name, version in wheels_for(root).items():
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
