from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_venv

from stylewrap.backends import envs
from stylewrap.backends.base import EnvSpec, TableBackend
from stylewrap.backends.envcheck import diagnose
from stylewrap.backends.envinstall import install
from stylewrap.backends.envs import (
    INSTALLING_MARKER,
    constraints_file,
    env_python,
    parse_pins,
    pins_for,
    read_pins,
    requirements_hash,
    version_matches,
)
from stylewrap.backends.llamafactory import LlamaFactoryBackend
from stylewrap.backends.swift import SwiftBackend
from stylewrap.config import load_config
from stylewrap.errors import ConfigError, InputError, RunFailed

BACKENDS = {"llamafactory": LlamaFactoryBackend, "swift": SwiftBackend}
REINSTALL = "stylewrap backend install fake"


class FAKE(TableBackend):
    name = "fake"
    distribution = "fakebackend"
    program = "fake-cli"
    env = EnvSpec(requirements=Path("fake.txt"), cli_check=("version",),
                  imports=("fakebackend", "fakebackend:train", "vision_user"), cpu_removals=("torchvision",))
CLI_OK = """
import sys
print("fakebackend 1.0")
"""
CLI_BROKEN = """
import sys
print("ImportError: cannot import name 'Json' from 'datasets.features'")
sys.exit(3)
"""


# ---------------------------------------------------------------- pins


def test_parse_pins_reads_exact_pins_and_skips_comments_and_pip_options():
    text = "# header\n\n-r base.txt\n--extra-index-url https://x\nJinja2==3.1.6\ntyping_extensions==4.16.0  # why\ntorch===2.13.0\n"
    assert parse_pins(text, "reqs.txt") == {"jinja2": "3.1.6", "typing-extensions": "4.16.0", "torch": "2.13.0"}


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("a==1\nb>=2\n", 2, "not an exact pin: 'b>=2'"),
        ("Foo_Bar==1\nfoo-bar==2\n", 2, "foo-bar is pinned twice"),
    ],
)
def test_parse_pins_names_file_and_line_of_a_bad_entry(text, line, message):
    with pytest.raises(ConfigError) as caught:
        parse_pins(text, "reqs.txt")
    assert caught.value.one_line().startswith(f"reqs.txt:{line}: {message}")


def test_version_matches_ignores_only_the_local_label():
    assert version_matches("2.13.0+cpu", "2.13.0")
    assert version_matches("4.0.0", "4.0.0")
    assert not version_matches("2.13.1", "2.13.0")
    assert not version_matches("", "1.0")


def test_shipped_pins_hold_the_measured_known_good_versions():
    llamafactory, swift = pins_for(BACKENDS["llamafactory"], gpu=False), pins_for(BACKENDS["swift"], gpu=False)
    assert llamafactory["llamafactory"] == "0.9.5" and swift["ms-swift"] == "4.6.0"
    assert llamafactory["torch"] == swift["torch"] == "2.13.0"
    # measured: llamafactory 0.9.5 needs transformers<=5.6.0 and datasets<=4.0.0 ...
    assert tuple(map(int, llamafactory["transformers"].split("."))) <= (5, 6, 0)
    assert tuple(map(int, llamafactory["datasets"].split("."))) <= (4, 0, 0)
    # ... and ms-swift 4.6.0 fails at import with datasets 4.0.0
    assert swift["datasets"] != "4.0.0"
    # torch comes only from the constraints file, so --gpu swaps the build without another freeze
    for backend in BACKENDS.values():
        assert "torch" not in read_pins(backend.env.requirements)
    assert read_pins(constraints_file(gpu=True)) == {"torch": "2.13.0"}
    assert "===" in constraints_file(gpu=True).read_text()


def test_gpu_envs_get_liger_kernel_and_cpu_envs_do_not():
    # the GPU defaults turn Liger on when the env has it (backends/autotune.py); it needs CUDA torch
    for spec in BACKENDS.values():
        assert pins_for(spec, gpu=True)["liger-kernel"] == "0.8.5"
        assert "liger-kernel" not in pins_for(spec, gpu=False)


def test_requirements_hash_differs_between_cpu_and_gpu():
    spec = BACKENDS["llamafactory"]
    assert requirements_hash(spec, gpu=False) != requirements_hash(spec, gpu=True)
    assert requirements_hash(spec, gpu=False) == requirements_hash(spec, gpu=False)


# ---------------------------------------------------------------- doctor on real venvs


def test_doctor_finds_the_torchvision_trap_and_drifted_pins(tmp_path):
    venv = make_venv(
        tmp_path / "env",
        distributions={"fakebackend": "1.0", "helperlib": "1.5", "torchvision": "0.28.0"},
        modules={
            "fakebackend": "def train(): pass\n",
            "vision_user": "raise RuntimeError('operator torchvision::nms does not exist')\n",
        },
        scripts={"fake-cli": CLI_OK},
    )
    report = diagnose(
        FAKE,
        venv,
        pins={"fakebackend": "1.0", "helperlib": "2.0"},
        expected_hash="abc",
        executable=venv / "bin" / "fake-cli",
        reinstall=REINSTALL,
    )
    problems = {problem.what: problem.fix for problem in report.problems}
    assert not report.ok
    trap = next(what for what in problems if what.startswith("torchvision 0.28.0 is a CUDA build"))
    assert problems[trap] == f"{venv}/bin/pip uninstall -y torchvision"
    assert "versions differ from the pins: helperlib 1.5 (pinned 2.0)" in problems
    assert "no env.json: not installed by stylewrap" in problems
    # the trap explains the failing import; it is not reported twice
    assert not any("vision_user" in what for what in problems)
    assert len(problems) == 3
    assert report.versions == {"fakebackend": "1.0"}


def test_doctor_passes_a_healthy_env_and_reports_a_failing_cli(tmp_path):
    venv = make_venv(
        tmp_path / "env",
        distributions={"fakebackend": "1.0"},
        modules={"fakebackend": "def train(): pass\n", "vision_user": ""},
        scripts={"fake-cli": CLI_OK, "broken-cli": CLI_BROKEN},
    )
    (venv / "env.json").write_text(json.dumps({"requirements_hash": "abc"}))
    healthy = diagnose(
        FAKE, venv, pins={"fakebackend": "1.0"}, expected_hash="abc", executable=venv / "bin" / "fake-cli", reinstall=REINSTALL
    )
    assert healthy.ok, healthy.problems
    assert healthy.python and healthy.record == {"requirements_hash": "abc"}

    broken = diagnose(
        FAKE, venv, pins={"fakebackend": "1.0"}, expected_hash="new", executable=venv / "bin" / "broken-cli", reinstall=REINSTALL
    )
    assert [(p.what, p.fix) for p in broken.problems] == [
        ("installed from other pins than this stylewrap ships", f"{REINSTALL} --force"),
        ("`broken-cli version` fails: ImportError: cannot import name 'Json' from 'datasets.features'", f"{REINSTALL} --force"),
    ]


def test_doctor_reports_a_missing_import_in_a_users_own_env_without_pin_checks(tmp_path):
    venv = make_venv(tmp_path / "mine", distributions={"fakebackend": "0.1"}, modules={"vision_user": ""})
    repair = f"repair {venv}, or remove backends.fake.venv from stylewrap.yaml to use the managed env"
    report = diagnose(FAKE, venv, pins=None, expected_hash=None, executable=None, reinstall=repair)
    assert [(p.what, p.fix) for p in report.problems] == [
        ("import fakebackend fails: ModuleNotFoundError: No module named 'fakebackend'", repair),
        ("import fakebackend:train fails: ModuleNotFoundError: No module named 'fakebackend'", repair),
        (f"no fake-cli in {venv}", repair),
    ]


def test_doctor_on_missing_and_half_installed_envs(tmp_path):
    missing = diagnose(FAKE, tmp_path / "none", pins={}, expected_hash="x", executable=None, reinstall=REINSTALL)
    assert [(p.what, p.fix) for p in missing.problems] == [(f"no environment at {tmp_path / 'none'}", REINSTALL)]
    venv = make_venv(tmp_path / "half")
    (venv / INSTALLING_MARKER).write_text("installing\n")
    half = diagnose(FAKE, venv, pins={}, expected_hash="x", executable=None, reinstall=REINSTALL)
    assert [p.fix for p in half.problems] == [f"{REINSTALL} --force"]


# ---------------------------------------------------------------- install bookkeeping


def test_half_installed_env_has_no_python(tmp_path, monkeypatch):
    monkeypatch.setenv(envs.ENVS_DIR_VAR, str(tmp_path))
    venv = make_venv(tmp_path / "swift")
    assert env_python("swift") == venv / "bin" / "python"
    (venv / INSTALLING_MARKER).write_text("installing\n")
    assert env_python("swift") is None


def test_install_leaves_an_env_that_matches_the_pins_alone(tmp_path, monkeypatch):
    monkeypatch.setenv(envs.ENVS_DIR_VAR, str(tmp_path))
    venv = make_venv(tmp_path / "swift")
    record = {"requirements_hash": requirements_hash(BACKENDS["swift"], gpu=False), "versions": {"ms-swift": "4.6.0"}}
    (venv / "env.json").write_text(json.dumps(record))
    result = install("swift")
    assert (result.installed, result.location, result.versions) == (False, venv, {"ms-swift": "4.6.0"})


def test_install_refuses_to_touch_a_users_own_env(tmp_path):
    (tmp_path / "stylewrap.yaml").write_text(f"backends:\n  swift:\n    venv: {tmp_path / 'mine'}\n")
    with pytest.raises(InputError, match="backends.swift points at your own installation"):
        install("swift", config=load_config(tmp_path / "stylewrap.yaml"))


def test_a_failed_install_puts_the_previous_env_back(tmp_path, monkeypatch):
    monkeypatch.setenv(envs.ENVS_DIR_VAR, str(tmp_path))
    previous = make_venv(tmp_path / "swift", distributions={"ms-swift": "4.5.0"})
    steps = []
    with pytest.raises(RunFailed, match="cannot start '/nowhere/python3'"):
        install("swift", python="/nowhere/python3", on_step=steps.append)
    assert steps == [f"creating {previous}"]
    assert env_python("swift") == previous / "bin" / "python"
    assert list(previous.glob("lib/python3*/site-packages/ms_swift-4.5.0.dist-info"))
    assert not (tmp_path / "swift.previous").exists()
