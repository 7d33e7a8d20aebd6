"""Each eval metric says what a reader needs: a loop reads as repetition, one catch-phrase as low
diversity, a wrong sum as incorrect, and the intervals narrow with more probes."""

from __future__ import annotations

import json

import pytest

from stylewrap.errors import InputError
from stylewrap.eval import bootstrap, metrics
from stylewrap.eval.judge import combine, parse_verdict
from stylewrap.eval.probes import load_probes
from stylewrap.eval.scoring import score_answers

MARKERS = ("噢", "天啊", "我的上帝", "上帝", "亲爱的")


def test_markers_count_the_longest_phrase_once_and_mask_cleanly():
    text = "噢，我的上帝，亲爱的，今天下雨了。"
    assert metrics.marker_counts(text, MARKERS) == [1, 0, 1, 0, 1]    # 我的上帝 is not also 上帝
    assert metrics.mask_markers(text, MARKERS) == "今天下雨了。"


def test_repetition_and_distinct_bigrams_catch_a_loop():
    sentence = "今天我们去公园散步，然后回家吃饭。"
    loop = "我很好。" * 12
    assert metrics.repetition(sentence) == 0.0 and metrics.repetition(loop) > 0.7
    assert metrics.distinct2(sentence) == 1.0 and metrics.distinct2(loop) < 0.3
    assert metrics.flags(loop) == ["repeated"] and metrics.flags("   ") == ["empty"] and metrics.flags(sentence) == []
    assert "garbled" in metrics.flags("\ufffd\ufffd答\ufffd")


@pytest.mark.parametrize("answer, ok", [("等于3575。", True), ("答案是 3,575", True), ("３５７５", True),
                                        ("35750", False), ("3574", False), ("3575.5", False)])
def test_a_known_numeric_answer_must_stand_alone(answer, ok):
    assert metrics.is_correct(answer, ("3575",)) is ok


def test_chrf_is_sacrebleus_on_a_zero_to_one_scale():
    from sacrebleu.metrics import CHRF

    a, b = "我最近看了一部电影，非常精彩。", "我最近看了一本书，非常有趣。"
    assert metrics.chrf(a, b) == pytest.approx(CHRF().sentence_score(a, [b]).score / 100)
    assert metrics.chrf(a, a) == pytest.approx(1.0)
    assert metrics.chrf_masked("噢，亲爱的，" + a, a, MARKERS) == pytest.approx(1.0)
    assert metrics.chrf("", "") == 0.0 and metrics.chrf_masked("噢，亲爱的", a, MARKERS) == 0.0   # saying nothing keeps nothing


def test_bootstrap_interval_holds_the_mean_is_seeded_and_narrows_with_more_probes():
    few = [1.0, 0.0] * 5
    many = few * 40
    small, large = bootstrap.interval(few, seed=1), bootstrap.interval(many, seed=1)
    assert small["low"] <= small["mean"] == 0.5 <= small["high"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 3
    assert bootstrap.interval(few, seed=1) == small
    assert bootstrap.interval([], seed=1) is None


def test_marker_diversity_catches_collapse_onto_one_catch_phrase():
    varied = [metrics.marker_counts(t, MARKERS) for t in ("噢，好。", "天啊，好。", "亲爱的，好。", "我的上帝，好。")]
    collapsed = [metrics.marker_counts("噢，好。", MARKERS)] * 4
    assert bootstrap.interval(varied, bootstrap.diversity)["mean"] == 1.0
    assert bootstrap.interval(collapsed, bootstrap.diversity)["mean"] == 0.25


def test_scores_rank_a_styled_faithful_variant_above_a_looping_one():
    probes = load_probes("classical")[1]
    plain = ["我是一个助手。", "我喜欢音乐。", "等于3575。", "先炒鸡蛋再炒西红柿。", "一只都没有了，都飞走了。"]
    styled = ["噢，亲爱的，" + a for a in plain]
    looping = ["噢噢噢噢噢噢噢噢噢噢噢噢"] * 5
    summary, rows = score_answers(probes, {"base": plain, "styled": styled, "looping": looping}, reference="base",
                                  markers=MARKERS, p_style={"base": [0.1] * 5, "styled": [0.9] * 5, "looping": [0.9] * 5},
                                  persona="助手", judged=None, seed=0)
    assert summary["styled"]["j"]["mean"] > 0.8 > 0.1 > summary["looping"]["j"]["mean"]
    assert summary["styled"]["correct"]["mean"] == 1.0 and summary["looping"]["correct"]["mean"] == 0.0
    assert summary["base"]["identity"]["mean"] == 1.0 and summary["base"]["identity"]["n"] == 1
    assert summary["styled"]["marker_rate"]["mean"] == 1.0 and summary["base"]["marker_rate"]["mean"] == 0.0
    assert rows[0]["variants"]["looping"]["flags"] == ["repeated"]


def test_a_judge_win_needs_both_orders_to_agree():
    prefers_variant = {"style": "B", "content": "B", "fluency": "tie", "overall": "B"}   # variant was B
    agrees = {"style": "A", "content": "B", "fluency": "tie", "overall": "A"}           # variant was A
    assert combine(prefers_variant, agrees) == {"style": "win", "content": "tie", "fluency": "tie", "overall": "win"}
    always_first = {axis: "A" for axis in ("style", "content", "fluency", "overall")}
    assert set(combine(always_first, always_first).values()) == {"tie"}


def test_a_verdict_must_name_a_side_on_every_axis():
    assert parse_verdict('```json\n{"style":"a","content":"B","fluency":"TIE","overall":"b"}\n```')["style"] == "A"
    with pytest.raises(ValueError):
        parse_verdict('{"style":"A","content":"B","fluency":"tie"}')
    with pytest.raises(ValueError):
        parse_verdict("I prefer the second answer.")


def test_probe_files_name_the_line_and_field_of_a_bad_row(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"question": "1+1?", "answer": 2, "kind": "arithmetic"}, {"question": "你好", "topic": "闲聊"}]) + "\n")
    source, probes = load_probes(str(good))
    assert [(p.kind, p.answers) for p in probes] == [("arithmetic", ("2",)), ("everyday", ())]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"question": "x", "answer": []}\n')
    with pytest.raises(InputError) as error:
        load_probes(str(bad))
    assert error.value.one_line().startswith(f"{bad}:2: answer")
