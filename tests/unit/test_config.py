from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from stylewrap.cli import cli
from stylewrap.config import commented_yaml, load_config, parse_override
from stylewrap.errors import ConfigError


def test_defaults_without_file():
    config = load_config(None, search=False, environ={})
    assert config.train.backend == "llamafactory"
    assert config.deploy.host == "127.0.0.1"


def test_scaffold_is_valid_and_complete(tmp_path):
    path = tmp_path / "stylewrap.yaml"
    path.write_text(commented_yaml())
    data = yaml.safe_load(path.read_text())
    # the optional stages of `stylewrap run` are there, commented out: on only when written
    assert set(data) == {"style", "data", "train", "slurm", "export", "eval", "backends"}
    assert load_config(path, environ={}).model_dump() == load_config(None, search=False, environ={}).model_dump()
    lines, inside = [], False
    for line in path.read_text().splitlines():  # what a person does: uncomment each block under its marker
        inside = line.startswith("# uncomment to add") or (inside and line.startswith("# "))
        lines.append(line[2:] if inside and not line.startswith("# uncomment") else line)
    uncommented = "\n".join(lines)
    path.write_text(uncommented)
    assert set(yaml.safe_load(uncommented)) == {"style", "datagen", "data", "train", "slurm", "export", "eval", "deploy", "publish", "backends"}
    config = load_config(path, environ={})
    assert {"datagen", "deploy", "publish"} <= config.model_fields_set


def test_unknown_key_names_line_and_suggests(tmp_path):
    path = tmp_path / "stylewrap.yaml"
    path.write_text("train:\n  backend: swift\n  learnig_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(err.value).startswith(f"{path}:3: train.learnig_rate: unknown key")
    assert "did you mean 'learning_rate'" in str(err.value)


def test_duplicate_key_is_rejected(tmp_path):
    path = tmp_path / "stylewrap.yaml"
    path.write_text("train:\n  lora_rank: 8\n  lora_rank: 16\n")
    with pytest.raises(ConfigError, match=r":3: lora_rank: duplicate key"):
        load_config(path, environ={})


def test_bad_value_names_field(tmp_path):
    path = tmp_path / "stylewrap.yaml"
    path.write_text("deploy:\n  port: 70000\n")
    with pytest.raises(ConfigError, match=r"stylewrap.yaml:2: deploy.port: input should be less than"):
        load_config(path, environ={})


def test_precedence_file_env_flag(tmp_path):
    path = tmp_path / "stylewrap.yaml"
    path.write_text("train:\n  learning_rate: 0.1\n  lora_rank: 4\n")
    env = {"STYLEWRAP_TRAIN__LEARNING_RATE": "0.2", "STYLEWRAP_TRAIN__LORA_RANK": "16"}
    config = load_config(path, ["train.learning_rate=1e-4"], environ=env)
    assert config.train.learning_rate == 1e-4
    assert config.train.lora_rank == 16


def test_override_parsing():
    assert parse_override("train.learning_rate=1e-4") == (["train", "learning_rate"], 1e-4)
    assert parse_override("train.packing=true") == (["train", "packing"], True)
    assert parse_override("train.lora_target=q_proj,v_proj") == (["train", "lora_target"], "q_proj,v_proj")
    assert parse_override('datagen.teacher_model="1e5"') == (["datagen", "teacher_model"], "1e5")
    with pytest.raises(ConfigError):
        parse_override("train.learning_rate")


def test_cli_validate_exit_codes(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(cli, ["init"]).exit_code == 0
    ok = runner.invoke(cli, ["config", "validate"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(cli, ["init"])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(cli, ["config", "validate", "--set", "train.method=qlorra"])
    assert bad.exit_code == 2
    assert "--set train.method=qlorra: train.method" in bad.output
    assert "Traceback" not in bad.output


def test_secrets_are_not_config_fields():
    rendered = commented_yaml()
    for word in ("api_key:", "token:", "password"):
        assert word not in rendered
