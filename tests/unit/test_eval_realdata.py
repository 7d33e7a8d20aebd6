"""The eval metrics separate real styled text from its plain original: TslDial's answers before
(2_Dialogues.jsonl) and after (3_TranslationalDialogues.jsonl) the 西式翻译腔 rewrite.

Twins are paired by question, using only questions that occur once in each file (the files are
not in the same order and 7,493 questions repeat). The figures are in docs/eval.md."""

from __future__ import annotations

import collections
import json
import random

import pytest

from stylewrap.datagen.styles import load_style
from stylewrap.eval import metrics
from stylewrap.eval.bootstrap import interval
from stylewrap.eval.classifier import train_style_classifier

MARKERS = tuple(load_style("translational").markers)


@pytest.fixture(scope="module")
def twins(shared_data) -> list[tuple[str, str]]:
    folder = shared_data / "tsldial"
    plain = [json.loads(line) for line in (folder / "2_Dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    styled = [json.loads(line) for line in (folder / "3_TranslationalDialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    plain_count = collections.Counter(r["问"] for r in plain)
    styled_count = collections.Counter(r["问"] for r in styled)
    plain_answer = {r["问"]: r["答"] for r in plain}
    styled_answer = {r["问"]: r["答"] for r in styled}
    pairs = [(plain_answer[q], styled_answer[q]) for q in plain_answer if plain_count[q] == 1 and styled_count.get(q) == 1]
    assert len(pairs) > 3000
    return pairs


def test_classifier_trained_on_one_part_scores_the_rest_with_auc_above_097(twins):
    classifier = train_style_classifier(twins, source="tsldial", seed=0)
    assert classifier.held_out_rows > 1000
    assert classifier.auc >= 0.97
    plain_p, styled_p = classifier.p_style(["我一般会去公园跑步，然后在家做饭。"]), classifier.p_style(
        ["噢，我的上帝，我敢发誓，每个周末我都会去公园跑上几圈，老伙计！"])
    assert styled_p[0] > 0.5 > plain_p[0]


def test_negative_control_the_auc_bar_fails_a_classifier_that_learned_nothing(twins):
    """The same training with the labels scrambled (each pair's sides swapped at random) must miss
    the 0.97 bar: the bar measures the style, not the pipeline."""
    rng = random.Random(0)
    scrambled = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in twins]
    assert train_style_classifier(scrambled, source="scrambled", seed=0).auc < 0.7


def test_marker_rate_separates_styled_from_plain(twins):
    plain_rate = interval([float(any(metrics.marker_counts(p, MARKERS))) for p, _ in twins])
    styled_rate = interval([float(any(metrics.marker_counts(s, MARKERS))) for _, s in twins])
    assert styled_rate["low"] > 0.9 and plain_rate["high"] < 0.05


def test_masked_chrf_of_twins_is_far_above_unrelated_answers(twins):
    sample = twins[:1500]
    twin = interval([metrics.chrf_masked(s, p, MARKERS) for p, s in sample])
    unrelated = interval([metrics.chrf_masked(s, sample[(i + 1) % len(sample)][0], MARKERS)
                          for i, (_, s) in enumerate(sample)])
    assert twin["low"] > 0.6 and unrelated["high"] < 0.1
    assert twin["mean"] > 8 * unrelated["mean"]


def test_masking_the_markers_is_what_makes_a_restyled_twin_look_like_its_original(twins):
    """The styled answer minus its markers is closer to the plain one than the styled answer is."""
    sample = twins[:500]
    masked = sum(metrics.chrf_masked(s, p, MARKERS) for p, s in sample)
    unmasked = sum(metrics.chrf(s, p) for p, s in sample)
    assert masked > unmasked
