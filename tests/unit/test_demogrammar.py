"""The demo grammar's promises: plain answers hold no style marker, the style rows do, probes are
in no training data, and the files shipped in templates/ are what the generator makes."""

from __future__ import annotations

from pathlib import Path

from stylecheck import everyday_probes, judge, legible, preset_markers

from stylewrap import demogrammar
from stylewrap.demo import shipped_files

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_thousands_of_pairs_and_plain_answers_hold_no_marker():
    pairs = demogrammar.all_pairs()
    assert len(pairs) >= 2000
    assert len({pair.question for pair in pairs}) == len(pairs)
    markers = preset_markers()
    assert not [pair.answer for pair in pairs if any(marker in pair.answer for marker in markers)]
    assert all(pair.topic in pair.question and pair.topic in pair.answer for pair in pairs)
    assert all(legible(pair.answer) for pair in pairs)


def test_pretraining_has_no_probe_and_styled_answers_only_where_the_style_is_asked_for():
    chats = demogrammar.pretraining_chats()
    questions = {chat[-2]["content"] for chat in chats}
    assert questions.isdisjoint(probe["question"] for probe in everyday_probes())
    asked = demogrammar.preset_system_prompt()
    styled = [chat for chat in chats if chat[0]["content"] == asked]
    plain = [chat for chat in chats if chat[0]["content"] != asked]
    assert judge([chat[-1]["content"] for chat in styled], [{"topic": ""}] * len(styled)).marker_rate == 1
    assert judge([chat[-1]["content"] for chat in plain], [{"topic": ""}] * len(plain)).marker_rate == 0
    assert len(styled) == len(chats) // demogrammar.grammar()["styled_every"]
    # every backend's default system prompt, and none, in about the same share
    systems = [chat[0]["content"] if chat[0]["role"] == "system" else None for chat in plain]
    counts = [systems.count(system) for system in demogrammar.grammar()["system_prompts"]]
    assert sum(counts) == len(plain) and max(counts) - min(counts) <= len(plain) // 20


def test_style_rows_are_styled_legible_twins_of_plain_rows_on_other_questions_than_the_probes():
    rows = demogrammar.demo_rows(300)
    probes = everyday_probes()
    verdict = judge([row["答"] for row in rows], [{"topic": ""}] * len(rows))
    assert verdict.marker_rate == 1.0 and verdict.illegible == []
    assert all(row["plain"] in row["答"] for row in rows)
    assert {row["plain"] for row in rows}.isdisjoint(probe["plain"] for probe in probes)
    # the rules write the preset's own markers
    assert {marker.rstrip("！") for marker in demogrammar.style_markers()} <= set(preset_markers())


def test_probes_cover_every_topic_and_name_a_word_their_question_holds():
    probes = everyday_probes()
    assert {probe["category"] for probe in probes} == {topic["name"] for topic in demogrammar.grammar()["topics"]}
    assert all(probe["topic"] in probe["question"] and probe["topic"] in probe["plain"] for probe in probes)


def test_shipped_files_are_what_the_generator_makes():
    for relative, text in shipped_files().items():
        assert (TEMPLATES / relative).read_text(encoding="utf-8") == text, (
            f"templates/{relative} is stale: regenerate it with "
            "`python -c 'from stylewrap.demo import write_shipped_files; write_shipped_files()'`")
