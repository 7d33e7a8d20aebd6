"""`stylewrap export RUN --to gguf` through llama.cpp's maintained converter (fetched from the
llama-cpp-python sdist on PyPI, `backends/gguf.py`), through the installed console script: a real
LLaMA-Factory run of a tiny SentencePiece Llama becomes a GGUF that the `gguf` package's reader
reads back with every merged tensor, the tokenizer and the chat template; stylewrap's own tiny
model, whose BPE pre-tokenizer llama.cpp does not list, is refused in one clear line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors_check import tensor_names

from stylewrap.backends.envs import env_python
from stylewrap.rundir import RunInfo

pytestmark = pytest.mark.integration

STYLEWRAP = str(Path(sys.executable).with_name("stylewrap"))
BUILD = Path(__file__).with_name("spm_llama_build.py")


def stylewrap(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([STYLEWRAP, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    print(result.stdout, result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def llama_run(tmp_path_factory, shared_data) -> Path:
    project = tmp_path_factory.mktemp("gguf-project")
    corpus = shared_data / "tsldial" / "3_TranslationalDialogues.jsonl"
    subprocess.run([str(env_python("llamafactory")), str(BUILD), str(project / "model"), str(corpus)], check=True,
                   capture_output=True, timeout=600)
    (project / "train.jsonl").write_text("\n".join(corpus.read_text(encoding="utf-8").splitlines()[:16]) + "\n",
                                         encoding="utf-8")
    (project / "stylewrap.yaml").write_text(yaml.safe_dump({
        "data": {"train_file": "train.jsonl"},
        "train": {"backend": "llamafactory", "model": str(project / "model"), "template": "qwen", "max_steps": 2,
                  "save_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2,
                  "gradient_accumulation_steps": 1, "cutoff_len": 64, "dtype": "fp32", "dataloader_num_workers": 0},
    }))
    assert stylewrap("train", "--quiet", cwd=project).returncode == 0
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def test_export_to_gguf_writes_what_llama_cpp_reads(llama_run):
    from gguf import GGUFReader

    # LLaMA-Factory encodes a SentencePiece template piece by piece (each gets its own "▁"), so the merged
    # model's chat_template differs from training here: the template check is not what this test is about
    result = stylewrap("export", str(llama_run), "--to", "gguf", "--allow-template-mismatch", cwd=llama_run.parent.parent)
    assert result.returncode == 0, result.stderr
    written = llama_run / "gguf" / "model-f16.gguf"
    assert f"GGUF (f16, llama.cpp's converter from llama-cpp-python 0.3.36): {written}" in result.stdout
    merged = llama_run / RunInfo.load(llama_run).merged_dir
    reader = GGUFReader(written)

    def field(name):
        part = reader.fields[name]
        value = part.parts[part.data[0]]
        return bytes(value).decode() if part.types[0].name == "STRING" else value.tolist()

    assert field("general.architecture") == "llama"
    assert field("tokenizer.ggml.model") == "llama"          # the SentencePiece vocabulary, as llama.cpp names it
    config = json.loads((merged / "config.json").read_text())
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == config["vocab_size"]
    assert field("tokenizer.chat_template") == (merged / "chat_template.jinja").read_text(encoding="utf-8")
    # every merged weight is in the file (no LoRA tensor left: the adapter was merged in)
    weights = [n for f in merged.glob("*.safetensors") for n in tensor_names(f)]
    names = {tensor.name for tensor in reader.tensors}
    assert len(reader.tensors) == len(weights) and not any("lora" in n for n in names)
    embedding = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert sorted(int(d) for d in embedding.shape) == sorted([config["vocab_size"], config["hidden_size"]])
    assert not list((llama_run / "gguf").glob("*.partial"))


def test_a_tokenizer_llama_cpp_does_not_know_is_refused_in_one_line(swift_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(swift_run, run)
    result = stylewrap("export", str(run), "--to", "gguf", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "llama.cpp's converter does not know this model's tokenizer" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((run / "gguf").glob("*.gguf*"))
