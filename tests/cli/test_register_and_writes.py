"""`stylewrap data register` run many times at once, on a read-only or symlinked registry, and the
modes of the files stylewrap writes: through the installed console script."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from console import STYLEWRAP, environment, run_stylewrap

ROW = {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "噢，亲爱的朋友！"}]}
BACKENDS = {"llamafactory": "dataset_info.json", "swift": "custom_dataset_info.json"}


def dataset(folder: Path) -> Path:
    (folder / ".git").mkdir(exist_ok=True)
    path = folder / "style.jsonl"
    path.write_text(json.dumps(ROW, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def names_in(info: Path) -> set[str]:
    loaded = json.loads(info.read_text(encoding="utf-8"))
    return set(loaded) if isinstance(loaded, dict) else {entry["dataset_name"] for entry in loaded}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_concurrent_registrations_all_survive(tmp_path, backend):
    source = dataset(tmp_path)
    registry = tmp_path / "registry"
    registry.mkdir()
    names = [f"style_{number}" for number in range(8)]
    runs = [subprocess.Popen([str(STYLEWRAP), "data", "register", source, "--backend", backend, "--dataset-dir",
                              registry, "--name", name], cwd=tmp_path, env=environment({}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in names]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0 and "registered" in out, err
    assert names_in(registry / BACKENDS[backend]) == set(names)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_read_only_registry_is_refused_not_replaced(tmp_path, backend):
    source = dataset(tmp_path)
    info = tmp_path / BACKENDS[backend]
    before = "{}\n" if backend == "llamafactory" else "[]\n"
    info.write_text(before, encoding="utf-8")
    info.chmod(0o444)
    done = run_stylewrap("data", "register", source, "--backend", backend, "--dataset-dir", tmp_path, "--name", "s",
                         cwd=tmp_path)
    assert done.returncode == 2 and "read-only" in done.stderr and "chmod u+w" in done.stderr
    assert info.read_text(encoding="utf-8") == before and stat.S_IMODE(info.stat().st_mode) == 0o444


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_symlinked_registry_is_written_through_the_link(tmp_path, backend):
    source = dataset(tmp_path)
    real = tmp_path / "shared" / BACKENDS[backend]
    real.parent.mkdir()
    real.write_text('{"other": {"file_name": "other.json"}}\n' if backend == "llamafactory" else "[]\n", encoding="utf-8")
    real.chmod(0o640)
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / BACKENDS[backend]).symlink_to(real)
    done = run_stylewrap("data", "register", source, "--backend", backend, "--dataset-dir", registry, "--name", "s",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (registry / BACKENDS[backend]).is_symlink()
    assert "s" in names_in(real) and stat.S_IMODE(real.stat().st_mode) == 0o640


def test_written_files_follow_the_umask_not_0600(tmp_path):
    source = dataset(tmp_path)
    out = tmp_path / "converted.jsonl"
    done = subprocess.run(["sh", "-c", 'umask 022 && exec "$0" "$@"', str(STYLEWRAP), "data", "convert", str(source),
                           "--to", "messages", "-o", str(out)], cwd=tmp_path, env=environment({}), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    run_stylewrap("data", "register", source, "--backend", "llamafactory", "--dataset-dir", tmp_path, "--name", "s",
                  cwd=tmp_path)
    assert stat.S_IMODE((tmp_path / "dataset_info.json").stat().st_mode) == 0o666 & ~_test_umask()


def _test_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_init_never_writes_a_config_others_can_write(tmp_path):
    done = subprocess.run(["sh", "-c", 'umask 000 && exec "$0" "$@"', str(STYLEWRAP), "init"], cwd=tmp_path,
                          env=environment({}), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "stylewrap.yaml").stat().st_mode) == 0o644
    (tmp_path / ".git").mkdir()
    assert run_stylewrap("config", "validate", cwd=tmp_path).returncode == 0
