from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import make_venv

from stylewrap.backends.envs import ENVS_DIR_VAR, requirements_hash
from stylewrap.backends.swift import SwiftBackend
from stylewrap.cli import cli


def test_list_shows_each_backend_status_location_executable_and_versions(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVS_DIR_VAR, str(tmp_path))
    venv = make_venv(tmp_path / "swift", scripts={"swift": "print('swift')\n"})
    record = {"requirements_hash": requirements_hash(SwiftBackend, gpu=False), "versions": {"torch": "2.13.0+cpu", "ms-swift": "4.6.0"}}
    (venv / "env.json").write_text(json.dumps(record))
    result = CliRunner().invoke(cli, ["backend", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"llamafactory  missing         {tmp_path / 'llamafactory'}",
        "              executable: -",
        "              versions:   -",
        f"swift         installed       {venv}",
        f"              executable: {venv / 'bin' / 'swift'}",
        "              versions:   torch 2.13.0+cpu, ms-swift 4.6.0",
    ]


def test_list_marks_an_env_built_from_older_pins_as_outdated(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVS_DIR_VAR, str(tmp_path))
    venv = make_venv(tmp_path / "llamafactory")
    (venv / "env.json").write_text(json.dumps({"requirements_hash": "old"}))
    result = CliRunner().invoke(cli, ["backend", "list"])
    assert result.stdout.splitlines()[0] == f"llamafactory  outdated        {venv}"


def test_doctor_prints_the_fix_and_exits_1_when_an_env_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVS_DIR_VAR, str(tmp_path))
    result = CliRunner().invoke(cli, ["backend", "doctor", "swift"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"swift: PROBLEMS  ({tmp_path / 'swift'})",
        "  python -; -",
        "  executable: -",
        f"  x no environment at {tmp_path / 'swift'}",
        "    fix: stylewrap backend install swift",
    ]


def test_doctor_reports_a_configured_executable_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stylewrap.yaml").write_text("backends:\n  llamafactory:\n    executable: /nowhere/llamafactory-cli\n")
    result = CliRunner().invoke(cli, ["backend", "doctor", "llamafactory"])
    assert result.exit_code == 1
    assert "x backends.llamafactory.executable '/nowhere/llamafactory-cli' not found" in result.output
    assert "fix: fix the path in stylewrap.yaml" in result.output


def test_install_rejects_an_unknown_backend():
    result = CliRunner().invoke(cli, ["backend", "install", "axolotl"])
    assert result.exit_code == 2
    assert "'axolotl' is not one of 'llamafactory', 'swift'" in result.output
