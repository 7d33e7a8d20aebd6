"""Report on a python environment as one JSON line: interpreter, installed distributions and the
result of importing each target. Runs INSIDE a backend env (any python >= 3.10) through
`stylewrap.runner.script_invocation`, so it imports only the standard library.

    _env_probe.py TARGET...     (TARGET: `module` or `module:attribute`)
"""

import importlib
import json
import platform
import re
import sys
from importlib import metadata


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def try_import(target: str):
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        if attribute:
            getattr(module, attribute)
    except BaseException as exc:  # a broken env raises anything, including SystemExit and OSError
        message = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {message[-1] if message else ''}"[:400]
    return None


def main(targets):
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[canonical(name)] = dist.version
    imports = {target: try_import(target) for target in targets}
    torch = sys.modules.get("torch")
    report = {
        "python": platform.python_version(),
        "packages": packages,
        "imports": imports,
        "torch_cuda_build": bool(torch is not None and getattr(torch.version, "cuda", None)),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
