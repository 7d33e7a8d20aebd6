"""A third-party backend, as a separate package outside this repo: built and installed by pip, found
through the `stylewrap.backends` entry point, and then used like a built-in by the installed
console script: listed, configured (`backends.echo`), rendered and trained with. Nothing in
stylewrap names it; this is what the registry promises (ARCHITECTURE.md, "Add a backend")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

PYPROJECT = """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "stylewrap-echo"
version = "0.1.0"

[project.entry-points."stylewrap.backends"]
echo = "stylewrap_echo:EchoBackend"

[project.scripts]
echo-train = "stylewrap_echo.program:main"

[tool.setuptools]
packages = ["stylewrap_echo"]

[tool.setuptools.package-data]
stylewrap_echo = ["*.txt"]
"""

# Every fact of the backend in one unit, as backends/llamafactory/ and backends/swift/ hold theirs.
BACKEND = '''
from pathlib import Path

from stylewrap.backends.base import EnvSpec, LogFields, TableBackend
from stylewrap.backends.flags import STEP_OPTIONS, Flag, StepTable, same
from stylewrap_echo import registration


class EchoBackend(TableBackend):
    name = "echo"
    program = "echo-train"
    distribution = "stylewrap-echo"
    env = EnvSpec(requirements=Path(__file__).with_name("requirements.txt"), cli_check=("--version",),
                  imports=("stylewrap_echo",))
    subcommands = {"train": ("train",)}
    log_file = "echo_log.jsonl"
    log_fields = LogFields(step="step", total="total", loss="loss", lr="lr", eta="eta")
    data_format = "messages"
    data_suffix = ".jsonl"
    registration = registration
    registration_hint = "train with dataset_dir: {dataset_dir}, dataset: {name}"
    dataset_location = {"dataset_dir": "{data_dir}"}
    tables = {"train": StepTable(
        flags={**same(*STEP_OPTIONS["train"]), "learning_rate": Flag("lr"), "custom_dataset_info": None},
        constants={"output": {"echo_format": 1}},
    )}
'''

REGISTRATION = '''
import json
from pathlib import Path


def register(dataset_dir, name, path, fmt=None, *, force=False):
    registry = Path(dataset_dir) / "echo_datasets.json"
    known = json.loads(registry.read_text()) if registry.exists() else {}
    known[name] = Path(path).name
    registry.write_text(json.dumps(known))
    return registry


def hub_usage(repo_id, local_path, fmt):
    return "echo: train with --dataset " + repo_id, json.dumps({"echo": repo_id})
'''

# The backend's own program: reads the YAML stylewrap rendered, "trains", logs each step as JSONL.
PROGRAM = '''
import json
import sys
from pathlib import Path

import yaml


def main():
    if sys.argv[1:] == ["--version"]:
        print("echo-train 0.1.0")
        return
    command, config_file = sys.argv[1:3]
    config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
    datasets = json.loads((Path(config["dataset_dir"]) / "echo_datasets.json").read_text())
    rows = (Path(config["dataset_dir"]) / datasets[config["dataset"]]).read_text(encoding="utf-8").splitlines()
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    steps = config["max_steps"]
    with open(out / "echo_log.jsonl", "w", encoding="utf-8") as log:
        for step in range(1, steps + 1):
            log.write(json.dumps({"step": step, "total": steps, "loss": 3.0 / step, "lr": config["lr"], "eta": "0s"}) + "\\n")
    (out / "adapter_config.json").write_text(json.dumps({"rows_seen": len(rows), "command": command}))
'''


@pytest.fixture(scope="module")
def echo_installed(tmp_path_factory) -> Path:
    """`pip install` of the package into its own folder (PYTHONPATH), never into this venv."""
    source = tmp_path_factory.mktemp("stylewrap-echo-src")
    (source / "pyproject.toml").write_text(PYPROJECT)
    package = source / "stylewrap_echo"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(BACKEND))
    (package / "program.py").write_text(textwrap.dedent(PROGRAM))
    (package / "registration.py").write_text(textwrap.dedent(REGISTRATION))
    (package / "requirements.txt").write_text("pyyaml==6.0.2\n")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True, text=True)
    assert (target / "bin" / "echo-train").is_file()
    return target


def stylewrap(project: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "STYLEWRAP_ENVS_DIR": str(project / "envs")}
    return subprocess.run([str(Path(sys.executable).with_name("stylewrap")), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path, echo_installed, shared_data) -> Path:
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    (tmp_path / "rows.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "rows.jsonl"},
        "train": {"backend": "echo", "model": "Qwen/Qwen2.5-0.5B-Instruct", "template": "qwen", "max_steps": 4,
                  "learning_rate": 0.001},
        "backends": {"echo": {"executable": str(echo_installed / "bin" / "echo-train")}},
    }), encoding="utf-8")
    return tmp_path


def test_a_backend_from_another_package_is_listed_configured_rendered_and_trained(project, echo_installed):
    listed = stylewrap(project, echo_installed, "backend", "list")
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == ["echo", "own"] for line in listed.stdout.splitlines()), listed.stdout

    shown = stylewrap(project, echo_installed, "config", "show")
    assert yaml.safe_load(shown.stdout)["backends"]["echo"]["executable"].endswith("bin/echo-train")
    typo = stylewrap(project, echo_installed, "config", "validate", "--set", "backends.ecno.venv=/x")
    assert typo.returncode == 2 and "backends.ecno: unknown key" in typo.stderr

    rendered = stylewrap(project, echo_installed, "render", "--out", "rendered")
    assert rendered.returncode == 0, rendered.stderr
    config = yaml.safe_load((project / "rendered" / "config" / "train.yaml").read_text(encoding="utf-8"))
    assert config["lr"] == 0.001 and config["echo_format"] == 1 and config["dataset_dir"] == "data"

    trained = stylewrap(project, echo_installed, "train", "--quiet")
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = (project / "runs").iterdir()
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["backend"] == "echo" and run["status"] == "succeeded" and run["metrics"]["steps"] == 4
    assert json.loads((run_dir / "output" / "adapter_config.json").read_text()) == {"rows_seen": 12, "command": "train"}
    assert (run_dir / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_without_the_package_the_backend_is_unknown(tmp_path, echo_installed):
    result = stylewrap(tmp_path, tmp_path, "backend", "doctor", "echo")
    assert result.returncode == 2 and "'echo' is not one of" in result.stderr
