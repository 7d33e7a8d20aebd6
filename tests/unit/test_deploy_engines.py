"""`deploy --engine`: the exact server argv per backend and engine, and the refusals with their reason."""

from __future__ import annotations

import json

import pytest

from test_deploy_plan import spec_of, world  # noqa: F401  (the fixture: fake envs, a model folder)

from stylewrap.backends.base import get_backend
from stylewrap.backends.swift import BATCHING_PLUGIN
from stylewrap.backends.serving import engine_args
from stylewrap.config import load_config
from stylewrap.errors import InputError
from stylewrap.serve.deploy import DeployRequest, plan

GOLDEN = {
    ("swift", "vllm"): ["--model", "{model}", "--template", "qwen", "--system", "You are a helpful assistant.", "--model_type", "qwen2", "--served_model_name",
                        "Qwen2-7B-Instruct", "--host", "127.0.0.1", "--port", "8000", "--infer_backend", "vllm"],
    ("swift", "lmdeploy"): ["--model", "{model}", "--template", "qwen", "--system", "You are a helpful assistant.", "--model_type", "qwen2", "--served_model_name",
                            "Qwen2-7B-Instruct", "--host", "127.0.0.1", "--port", "8000", "--infer_backend", "lmdeploy"],
    ("swift", "transformers"): ["--model", "{model}", "--template", "qwen", "--system", "You are a helpful assistant.", "--model_type", "qwen2",
                                "--served_model_name", "Qwen2-7B-Instruct", "--host", "127.0.0.1", "--port", "8000",
                                "--infer_backend", "transformers", "--max_batch_size", "16", "--external_plugins", "{batching_plugin}"],
    ("llamafactory", "vllm"): ["api", "--model_name_or_path", "{model}", "--template", "qwen", "--default_system",
                                 "You are a helpful assistant.", "--infer_backend", "vllm"],
    ("llamafactory", "sglang"): ["api", "--model_name_or_path", "{model}", "--template", "qwen", "--default_system",
                                 "You are a helpful assistant.", "--infer_backend", "sglang"],
    ("llamafactory", "transformers"): ["api", "--model_name_or_path", "{model}", "--template", "qwen",
                                       "--default_system", "You are a helpful assistant.", "--infer_backend", "huggingface"],
}


@pytest.mark.parametrize("backend,engine", sorted(GOLDEN))
def test_engine_argv(world, backend, engine):  # noqa: F811
    _, model, _ = world
    spec = spec_of(plan(DeployRequest(model=str(model), backend=backend, engine=engine), load_config(search=False)).invocation)
    names = {"{model}": str(model), "{batching_plugin}": BATCHING_PLUGIN}
    assert spec["argv"] == [names.get(arg, arg) for arg in GOLDEN[backend, engine]]


def test_llamafactory_has_no_lmdeploy(world):  # noqa: F811
    _, model, _ = world
    with pytest.raises(InputError, match="cannot serve with lmdeploy: LLaMA-Factory 0.9.5's infer_backend is"):
        plan(DeployRequest(model=str(model), backend="llamafactory", engine="lmdeploy"), load_config(search=False))


def test_an_engine_missing_from_the_env_or_outside_the_pin_is_refused(monkeypatch):
    lf = get_backend("llamafactory")
    monkeypatch.setattr(type(lf), "installed", lambda self: {"torch": "2.6.0"})
    with pytest.raises(InputError, match="vllm is not installed in the llamafactory environment"):
        engine_args(lf, "vllm")
    monkeypatch.setattr(type(lf), "installed", lambda self: {"vllm": "0.12.0"})
    with pytest.raises(InputError, match=r"accepts vllm>=0.4.3,<=0.11.0, the env has 0.12.0"):
        engine_args(lf, "vllm")
    monkeypatch.setattr(type(lf), "installed", lambda self: {"vllm": "0.10.1"})
    assert engine_args(lf, "vllm") == {"infer_backend": "vllm"}


def test_the_cli_refuses_with_the_reason(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    stylewrap = Path(sys.executable).with_name("stylewrap")
    result = subprocess.run([str(stylewrap), "deploy", "--model", str(model), "--backend", "llamafactory",
                             "--engine", "lmdeploy", "--dry-run"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cannot serve with lmdeploy" in result.stderr and "Traceback" not in result.stderr
