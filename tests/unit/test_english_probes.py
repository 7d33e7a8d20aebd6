"""The built-in English probe set: the ChatGLM-Tuning seed compared English instructions too."""

from __future__ import annotations

import re
from pathlib import Path

from stylewrap.eval.probes import builtin_probe_sets, load_probes

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seeds" / "002_8706b6ad88187f4a.txt"


def test_english_probes_start_with_the_seeds_english_instructions():
    assert "english" in builtin_probe_sets()
    _, probes = load_probes("english")
    seed_text = SEED.read_text(encoding="utf-8")
    english_part = seed_text[seed_text.index("微调英文数据结果对比"):]
    seed_instructions = re.findall(r"Instruction: (.+)", english_part)
    assert [p.question for p in probes[:3]] == [line.strip() for line in seed_instructions[:3]]
    assert all(p.question.isascii() for p in probes) and len(probes) >= 10
    assert {p.kind for p in probes} >= {"identity", "arithmetic", "riddle", "knowledge", "everyday"}
