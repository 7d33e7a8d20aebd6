"""bench/gpu's model arithmetic (MFU's N and N_lora) against the numbers the backends print."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", REPO_ROOT / "bench" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parameter_counts_match_the_7b_and_llamafactorys_trainable_params(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_load("model7b").QWEN25_7B))
    bench = _load("bench")
    numbers = bench.model_numbers(tmp_path)
    embedding = 152064 * 3584
    # Qwen2.5-7B: 7,615,616,512 parameters = matmuls + input embedding + q/k/v biases + norms
    biases = 28 * (3584 + 512 + 512)
    norms = 28 * 2 * 3584 + 3584
    assert numbers["matmul_params"] + embedding + biases + norms == 7_615_616_512
    # LLaMA-Factory printed "trainable params: 20,185,088" for rank 8 on all linear layers
    assert bench.lora_params(numbers, "all", 8) == 20_185_088
    assert bench.lora_params(numbers, "q_proj,v_proj", 8) == 28 * 8 * ((3584 + 3584) + (3584 + 512))


def test_summary_scales_mfu_by_gpus_and_takes_the_slowest_rank():
    bench = _load("bench")
    numbers = {"layers": 2, "hidden": 4, "matmul_params": 1000,
               "shapes": {"q_proj": (4, 4), "v_proj": (4, 4)}}
    record = {"seconds": 2.0, "world_size": 2, "tokens": 100, "label_tokens": 40, "sum_sq_seq_len": 500,
              "sequences": 5, "measured_steps": 3, "peak_memory_allocated_gib": 1.0, "peak_memory_reserved_gib": 2.0}
    records = [record, {**record, "seconds": 4.0}]
    result = bench.summarize({"name": "x", "backend": "swift", "preset": "p"}, records,
                             {"target_modules": ["q_proj", "v_proj"], "lora_rank": 1}, numbers)
    assert result["tokens_per_gpu_per_s"] == 200 / 4.0 / 2
    n_lora = 2 * (8 + 8)
    flops = 4 * 1000 * 200 + 6 * n_lora * 200 + 6 * 2 * 4 * 1000
    assert result["lora_params"] == n_lora
    assert abs(result["mfu"] - flops / 4.0 / (2 * bench.H200_BF16_DENSE_FLOPS)) < 1e-18


def test_the_bench_fails_loudly_when_its_runs_fail(tmp_path, monkeypatch, capsys):
    # a `stylewrap` that dies like the fresh GPU box did (No module named 'orjson'): exit 1, no records
    fake = tmp_path / "bin" / "stylewrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'orjson'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(_load("model7b").QWEN25_7B))
    bench = _load("bench")
    monkeypatch.setattr(bench, "versions", lambda: {})
    monkeypatch.setattr(bench, "Path", _under(tmp_path, bench.Path))
    monkeypatch.setattr("sys.argv", ["bench.py", "1gpu", "--model", str(model), "--data", str(tmp_path / "d.json"),
                                     "--out", str(tmp_path / "out"), "--only", "sw-default", "--repeat", "2"])
    try:
        bench.main()
    except SystemExit as exit:
        assert exit.code == 1
    else:
        raise AssertionError("bench.py exited 0 although every run failed")
    report = json.loads((tmp_path / "out" / "results-1gpu.json").read_text())
    assert [r["exit_code"] for r in report["runs"]] == [1, 1]
    assert report["summary"]["sw-default"]["finished"] == 0
    assert "2 of 2 runs failed: sw-default, sw-default" in capsys.readouterr().err


def _under(root, path_type):
    """bench.py's /tmp work folders, moved under the test's own folder."""
    def make(text, *rest):
        text = str(text)
        return path_type(str(root) + text if text.startswith("/tmp/gpubench") else text, *rest)
    return make
