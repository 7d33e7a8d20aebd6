"""The wheel and an editable install both put everything under `stylewrap.` (offline, no isolation)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
MAPPED = ("adapters", "datagen", "backends", "templates")


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory) -> Path:
    """The tracked files of the repo, copied so builds leave nothing behind in the checkout."""
    target = tmp_path_factory.mktemp("src")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def test_wheel_holds_only_the_stylewrap_package(source_tree, tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(source_tree)],
                   capture_output=True, text=True, check=True)
    (wheel,) = tmp_path.glob("stylewrap-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"stylewrap", next(t for t in tops if t.endswith(".dist-info"))}
    assert not tops & set(MAPPED)
    for module in ("stylewrap/adapters/__init__.py", "stylewrap/adapters/formats.py", "stylewrap/adapters/jsonstream.py",
                   "stylewrap/cli/data_cmd.py", "stylewrap/backends/envs.py", "stylewrap/templates/__init__.py",
                   "stylewrap/eval/entry.py", "stylewrap/templates/eval/judge-v1.yaml",
                   "stylewrap/templates/eval/report.html.j2", "stylewrap/templates/probes/standard.jsonl"):
        assert module in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "stylewrap = stylewrap.cli:main" in entry_points


def test_editable_install_imports_adapters_from_the_source_folder(source_tree, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # reuse this environment's packages (click, setuptools, ...) instead of installing them again
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-e", str(source_tree)], capture_output=True, text=True, check=True)
    probe = (
        "import importlib.util, stylewrap.adapters as a, stylewrap.cli.data_cmd;"
        "print(a.__file__); print(sorted(a.FORMATS));"
        f"print([m for m in {MAPPED!r} if importlib.util.find_spec(m)])"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path).stdout.splitlines()
    assert Path(out[0]).resolve() == (source_tree / "adapters" / "__init__.py").resolve()
    # the formats the package registers on import (the preference rows' formats register there too)
    assert out[1] == str(sorted(["alpaca", "messages", "messages_kto", "messages_pairs", "pairs", "qa", "ranking",
                                 "sharegpt", "swift"]))
    assert out[2] == "[]"  # no bare top-level adapters/datagen/backends/templates importable
