"""The GPU benchmark's offline wheels (bench/gpu/wheels.py) against what stylewrap really imports:
every third-party module the installed stylewrap imports at module level must come from a wheel the
box gets or from its image. (Runs on a fresh GPU box once died with `No module named 'orjson'`.)"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import sys
from pathlib import Path

import stylewrap

REPO_ROOT = Path(__file__).resolve().parents[2]
# scripts that run inside a backend env, not stylewrap's (ARCHITECTURE.md, runner.script_invocation)
BACKEND_ENV_SCRIPTS = {"_env_probe.py", "_known_keys.py", "_loss_curve.py", "serve_launcher.py", "predict.py",
                       "_tinymodel_build.py", "varlen_attention.py", "serve_batching.py"}


def _wheels():
    spec = importlib.util.spec_from_file_location("gpu_wheels", REPO_ROOT / "bench" / "gpu" / "wheels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_level_imports(path: Path) -> set[str]:
    """Top-level names imported outside any function or class (what importing the module needs)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_stylewrap_imports_is_carried_or_on_the_image():
    wheels = _wheels()
    carried = set(wheels.wheels_for())
    distributions = metadata.packages_distributions()
    package = Path(stylewrap.__file__).parent
    roots = [package, *(Path(p) for p in stylewrap.__path__ if Path(p) != package)]
    for sub in ("adapters", "backends", "datagen"):   # installed under stylewrap. from the repo root (ARCHITECTURE.md)
        roots.append(REPO_ROOT / sub)
    imported = set()
    for root in roots:
        for path in root.rglob("*.py"):
            if path.name not in BACKEND_ENV_SCRIPTS and "eval" not in path.relative_to(root).parts:
                imported |= module_level_imports(path)
    third_party = {name for name in imported - set(sys.stdlib_module_names) if name != "stylewrap"}
    assert "orjson" in third_party, "the check must see stylewrap's own imports"
    for module in sorted(third_party):
        dists = {wheels.normalized(d) for d in distributions.get(module, [])}
        assert dists, f"{module}: imported by stylewrap but installed by no distribution here"
        assert dists & (carried | wheels.IMAGE_PACKAGES), f"{module} ({dists}): neither carried nor on the GPU image"


def test_the_list_is_stylewraps_declared_requirements_and_theirs():
    wheels = _wheels()
    carried = wheels.wheels_for()
    declared = set(wheels.requirements_of("stylewrap"))
    assert declared - wheels.IMAGE_PACKAGES <= set(carried)
    assert {"orjson", "pydantic", "pydantic-core", "jsonlines"} <= set(carried)
    assert carried["orjson"] == metadata.version("orjson")     # pinned at what the tests ran with
    assert not set(carried) & wheels.IMAGE_PACKAGES
