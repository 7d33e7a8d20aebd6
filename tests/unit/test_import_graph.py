"""The import graph of stylewrap as installed: no module cycle, and no floor imports a floor above it.

The repo root keeps the folders the user asked for (`adapters/`, `backends/`, ...) and pyproject's
package-dir installs them as `stylewrap.adapters` etc. grimp reads a package from one folder, so the
installed layout is rebuilt from that mapping as a tree of symlinks and analysed in a subprocess
(where `stylewrap` is that tree, not the editable install). Imports under `if TYPE_CHECKING:` are
left out: they never run, so they cannot make an import order fail.
"""

from __future__ import annotations

import graphlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Floors, lowest first (ARCHITECTURE.md). A module may import its own floor and the floors below.
FLOORS = [
    ("ground", ("stylewrap", "stylewrap.errors", "stylewrap.fsutil", "stylewrap.secrets", "stylewrap.runner", "stylewrap.yamlfile",
                "stylewrap.rundir", "stylewrap.config", "stylewrap.identitynames", "stylewrap.templates")),
    ("formats", ("stylewrap.adapters",)),
    ("backends", ("stylewrap.backends",)),
    ("features", ("stylewrap.serve", "stylewrap.publish", "stylewrap.datagen", "stylewrap.eval", "stylewrap.pipeline", "stylewrap.dataops",
                  "stylewrap.project", "stylewrap.demo", "stylewrap.tinymodel", "stylewrap._tinymodel_build",
                  "stylewrap.demogrammar")),
    ("cli", ("stylewrap.cli", "stylewrap.__main__")),
]
# (importer, imported): the few imports that go up a floor, each with its reason
ALLOWED_UP = {
    # `backends.<name>` config sections come from the registry, which reads package metadata only
    ("stylewrap.config", "stylewrap.backends.registry"): "config sections per registered backend",
}

GRAPH_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import grimp
graph = grimp.build_graph("stylewrap", include_external_packages=False, cache_dir=None,
                          exclude_type_checking_imports=True)
print(json.dumps({module: sorted(graph.find_modules_directly_imported_by(module)) for module in graph.modules}))
"""


def installed_layout(root: Path) -> Path:
    """`root/stylewrap/...` laid out as pip installs it, from pyproject's package-dir (symlinks)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package_dir = config["package-dir"]
    for package in sorted(config["packages"], key=lambda name: name.count(".")):
        target = root.joinpath(*package.split("."))
        source = REPO / package_dir[package] if package in package_dir else None
        if source is not None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            if package == "stylewrap":
                target.mkdir()
                for entry in source.iterdir():
                    (target / entry.name).symlink_to(entry)
            else:
                target.symlink_to(source)
    return root


@pytest.fixture(scope="module")
def imports(tmp_path_factory) -> dict[str, list[str]]:
    tree = installed_layout(tmp_path_factory.mktemp("installed"))
    out = subprocess.run([sys.executable, "-c", GRAPH_SCRIPT, str(tree)], cwd=tree, capture_output=True, text=True,
                         check=True).stdout
    graph = json.loads(out)
    # the tree really is the whole installed package, not the editable stylewrap/ folder alone
    assert {"stylewrap.backends.base", "stylewrap.adapters.formats", "stylewrap.serve.deploy"} <= set(graph)
    return graph


def a_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle (a module, what it imports, ..., the module again), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return exc.args[1]
    return None


def floor_of(module: str) -> int:
    matches = [(len(prefix), level) for level, (_, prefixes) in enumerate(FLOORS) for prefix in prefixes
               if module == prefix or (prefix != "stylewrap" and module.startswith(prefix + "."))]
    if not matches:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS (and ARCHITECTURE.md)")
    return max(matches)[1]


def test_no_module_imports_itself_through_others(imports):
    assert a_cycle(imports) is None


def test_no_floor_imports_a_floor_above_it(imports):
    upward = sorted((module, imported) for module, targets in imports.items() for imported in targets
                    if floor_of(imported) > floor_of(module) and (module, imported) not in ALLOWED_UP)
    assert upward == []
