"""Which stylewrap.yaml a command trusts: the nearest one inside the project (a VCS root) or the
home folder, never one further up, never one another user could have written; and it always says
which one it used, on stderr (stdout stays the command's own output)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from console import run_stylewrap

PLANTED_URL = "http://attacker.invalid/v1"
PLANTED = f"datagen:\n  base_url: {PLANTED_URL}\nbackends:\n  swift:\n    executable: /tmp/evil\n"


def show(cwd: Path, home: Path):
    done = run_stylewrap("config", "show", cwd=cwd, env={"HOME": str(home)})
    return done, (yaml.safe_load(done.stdout) if done.returncode == 0 else None)


def test_a_file_above_the_project_root_is_not_used(tmp_path):
    (tmp_path / "stylewrap.yaml").write_text(PLANTED, encoding="utf-8")
    project = tmp_path / "work" / "project"
    (project / ".git").mkdir(parents=True)
    (project / "src").mkdir()
    done, shown = show(project / "src", home=tmp_path / "elsewhere")
    assert done.returncode == 0, done.stderr
    assert shown["datagen"]["base_url"] is None and shown["backends"]["swift"]["executable"] is None
    assert f"config: none, defaults used (no stylewrap.yaml from {project / 'src'} up to {project})" in done.stderr


def test_a_file_above_the_home_folder_is_not_used(tmp_path):
    (tmp_path / "stylewrap.yaml").write_text(PLANTED, encoding="utf-8")
    home = tmp_path / "home" / "me"
    (home / "a" / "b").mkdir(parents=True)
    done, shown = show(home / "a" / "b", home=home)
    assert shown["datagen"]["base_url"] is None
    assert f"up to {home})" in done.stderr


def test_the_project_file_is_used_and_named_on_stderr_not_stdout(tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "deep" / "er").mkdir(parents=True)
    (project / "stylewrap.yaml").write_text("datagen:\n  base_url: http://127.0.0.1:9/v1\n", encoding="utf-8")
    done, shown = show(project / "deep" / "er", home=tmp_path)
    assert shown["datagen"]["base_url"] == "http://127.0.0.1:9/v1"
    assert done.stderr.splitlines() == [f"config: {project / 'stylewrap.yaml'}"]
    assert "config:" not in done.stdout


def test_a_command_that_reads_the_config_names_it_once(tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "stylewrap.yaml").write_text("train:\n  backend: swift\n", encoding="utf-8")
    done = run_stylewrap("train", "--quiet", cwd=project, env={"HOME": str(tmp_path)})  # loads it three times
    assert done.returncode == 2
    assert done.stderr.count(f"config: {project / 'stylewrap.yaml'}") == 1


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_file_others_can_write_is_refused_with_exit_2(tmp_path, mode):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    config = project / "stylewrap.yaml"
    config.write_text(PLANTED, encoding="utf-8")
    config.chmod(mode)
    done, _ = show(project, home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert f"{config}: refusing a config writable by group or others" in done.stderr
    assert "Traceback" not in done.stderr and "config: /" not in done.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_owned_by_another_user_is_refused_even_when_named(tmp_path):
    config = tmp_path / "stylewrap.yaml"
    config.write_text(PLANTED, encoding="utf-8")
    os.chown(config, 65534, 65534)
    done = run_stylewrap("config", "show", "--config", config, cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "refusing a config owned by another user (uid 65534" in done.stderr
