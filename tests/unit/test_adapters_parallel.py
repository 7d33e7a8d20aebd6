"""Big JSONL files are processed in slices by worker processes; the output is the same as one process."""

from __future__ import annotations

import json

import pytest

from stylewrap.adapters import parallel
from stylewrap.adapters.ops import convert
from stylewrap.adapters.validate import validate
from stylewrap.errors import DataError


@pytest.fixture
def sliced(monkeypatch):
    """Every file is 'big' and the machine has 3 CPUs."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 3)


def _one_process(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 1 << 62)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_sliced_convert_writes_the_same_bytes(shared_data, tmp_path, monkeypatch, sliced, suffix):
    source = shared_data / "tsldial/2_Dialogues.jsonl"
    assert parallel.workers_for(source) == 3
    assert convert(source, tmp_path / f"sliced{suffix}", "sharegpt") == 12000
    _one_process(monkeypatch)
    assert convert(source, tmp_path / f"single{suffix}", "sharegpt") == 12000
    assert (tmp_path / f"sliced{suffix}").read_bytes() == (tmp_path / f"single{suffix}").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"sliced{suffix}", f"single{suffix}"])


def test_sliced_convert_reports_the_real_line_and_writes_nothing(shared_data, tmp_path, sliced):
    lines = (shared_data / "tsldial/2_Dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    lines[9999] = json.dumps({"问": "你好", "答": ["not", "a", "string"]}, ensure_ascii=False)
    lines[10500] = "{broken"
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "x.jsonl"
    with pytest.raises(DataError) as caught:
        convert(source, out, "messages")
    assert (caught.value.location.line, caught.value.location.field) == (10000, "答")
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_sliced_validate_matches_one_process(shared_data, tmp_path, monkeypatch, sliced):
    lines = (shared_data / "tsldial/2_Dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    for index in (5, 4000, 4001, 11998):
        lines[index] = lines[index].replace('{"问"', '{"问": "重复", "问"', 1) if index % 2 else "not json"
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sliced_report = validate(source, drop_invalid=True, output=tmp_path / "a.json", rejects=tmp_path / "a.rejects.jsonl")
    _one_process(monkeypatch)
    single_report = validate(source, drop_invalid=True, output=tmp_path / "b.json", rejects=tmp_path / "b.rejects.jsonl")
    assert [str(p) for p in sliced_report.problems] == [str(p) for p in single_report.problems]
    assert [(p.line, p.field) for p in sliced_report.problems] == [(6, "问"), (4001, None), (4002, "问"), (11999, None)]
    assert (sliced_report.rows, sliced_report.valid, sliced_report.kinds) == (single_report.rows, single_report.valid, single_report.kinds)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.rejects.jsonl").read_bytes() == (tmp_path / "b.rejects.jsonl").read_bytes()
    assert len(json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))) == 11996
