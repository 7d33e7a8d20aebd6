from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Tests plan and train for the CPU on every machine: stylewrap chooses GPU settings from the GPUs
# it can see, and the backends train on them, unless none are visible.
os.environ["CUDA_VISIBLE_DEVICES"] = ""

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data in ../shared/data (never copied into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: tests read real data from ../shared/data")
    return SHARED_DATA


@pytest.fixture
def style_file(tmp_path, shared_data):
    """The first 20 rows of the real 西式翻译腔 dialogues as a project's style data file."""
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    path = tmp_path / "style.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model(request, tmp_path_factory) -> Path:
    """The tiny Qwen2 chat model that speaks plain everyday Chinese (`stylewrap.tinymodel`), the
    one `stylewrap demo` uses: built once per machine and recipe (about a minute on two CPU
    cores), copied here. Fails, never skips, when no backend environment can build it.
    """
    from stylewrap.tinymodel import build_tiny_model

    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("stylewrap") / "tiny-model" if cache is not None else tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(folder)


@pytest.fixture(scope="session")
def swift_run(tiny_model, shared_data, tmp_path_factory) -> Path:
    """A real `stylewrap train` run (ms-swift LoRA, 3 steps on the tiny model), trained once per
    session and shared: publish uploads it, deploy serves it. Session-scoped, so it is trained
    before any function-scoped fake hub is up and the backend never sees MODELSCOPE_ENDPOINT."""
    import yaml
    from click.testing import CliRunner

    from stylewrap.cli import cli

    project = tmp_path_factory.mktemp("swift-project")
    rows = (shared_data / "tsldial" / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()
    (project / "train.jsonl").write_text("\n".join(rows[:32]) + "\n", encoding="utf-8")
    (project / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"backend": "swift", "model": str(tiny_model), "template": "qwen", "max_steps": 3, "save_steps": 3,
                  "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                  "cutoff_len": 128, "dtype": "fp32"},
    }))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        trained = CliRunner().invoke(cli, ["train", "--quiet"], catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def make_venv(
    folder: Path,
    *,
    distributions: dict[str, str] = {},
    modules: dict[str, str] = {},
    scripts: dict[str, str] = {},
) -> Path:
    """A real (pip-less) venv with hand-made installed distributions, modules and console scripts."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next(folder.glob("lib/python3*/site-packages"))
    for name, version in distributions.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    for name, source in scripts.items():
        script = folder / "bin" / name
        script.write_text(f"#!{folder / 'bin' / 'python'}\n" + textwrap.dedent(source))
        script.chmod(0o755)
    return folder
