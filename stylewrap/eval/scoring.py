"""From answers to numbers: every metric of every variant, each a mean over probes with its 95%
bootstrap interval, and the per-probe details the report shows beside the answers."""

from __future__ import annotations

from dataclasses import dataclass

from stylewrap.eval import bootstrap, metrics
from stylewrap.eval.judge import AXES, SCORE
from stylewrap.eval.probes import Probe


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    better: str      # "higher" | "lower" | "" (neither: a length is read, not ranked)
    percent: bool    # shown as a percentage


# the order of the report's table; docs/eval.md explains each in two lines
METRICS = (
    Metric("j", "J = p_style × chrF × (1 − repetition)", "higher", False),
    Metric("marker_rate", "answers with a marker", "higher", True),
    Metric("markers_per_100_chars", "markers per 100 characters", "higher", False),
    Metric("marker_diversity", "marker diversity", "higher", False),
    Metric("p_style", "p_style (classifier)", "higher", False),
    Metric("chrf_masked", "chrF to reference, markers masked", "higher", False),
    Metric("correct", "correct (known answers)", "higher", True),
    Metric("identity", "identity matches persona", "higher", True),
    Metric("distinct2", "distinct bigrams", "higher", False),
    Metric("repetition", "repetition (4-grams)", "lower", False),
    Metric("length", "length (characters)", "", False),
    Metric("length_ratio", "length / reference length", "", False),
    Metric("judge_win_rate", "judge: overall win rate", "higher", True),
    Metric("judge_style", "judge: style win rate", "higher", True),
    Metric("judge_content", "judge: content win rate", "higher", True),
    Metric("judge_fluency", "judge: fluency win rate", "higher", True),
)


def score_answers(probes: list[Probe], answers: dict[str, list[str]], *, reference: str, markers: tuple[str, ...],
                  p_style: dict[str, list[float]] | None, persona: str | None,
                  judged: dict[str, list[dict | None]] | None, seed: int) -> tuple[dict, list[dict]]:
    """({variant: {metric: {"mean", "low", "high", "n"}}}, one detail row a probe)."""
    reference_answers = answers[reference]
    summary: dict[str, dict] = {}
    details = [{"question": p.question, "kind": p.kind, "known_answer": list(p.answers), "variants": {}} for p in probes]
    for name, texts in answers.items():
        per: dict[str, list] = {"marker_rate": [], "markers": [], "marker_counts": [], "chrf_masked": [], "correct": [],
                                "identity": [], "distinct2": [], "repetition": [], "length": [], "length_ratio": [],
                                "p_style": [], "j": []}
        for index, (probe, text) in enumerate(zip(probes, texts, strict=True)):
            counts = metrics.marker_counts(text, markers)
            reference_text = reference_answers[index]
            kept = metrics.chrf_masked(text, reference_text, markers)
            repeated = metrics.repetition(text)
            style = p_style[name][index] if p_style else None
            per["marker_rate"].append(float(any(counts)))
            per["markers"].append((sum(counts), len(text)))
            per["marker_counts"].append(counts)
            per["chrf_masked"].append(kept)
            per["distinct2"].append(metrics.distinct2(text))
            per["repetition"].append(repeated)
            per["length"].append(len(text))
            if reference_text:
                per["length_ratio"].append(len(text) / len(reference_text))
            if probe.answers:
                per["correct"].append(float(metrics.is_correct(text, probe.answers)))
            if persona and probe.kind == "identity":
                per["identity"].append(float(metrics.mentions(text, persona)))
            if style is not None:
                per["p_style"].append(style)
                per["j"].append(style * kept * (1.0 - repeated))
            details[index]["variants"][name] = {
                "answer": text, "markers": sum(counts), "marker_spans": metrics.marker_spans(text, markers),
                "flags": metrics.flags(text), "chrf_masked": kept, "repetition": repeated, "p_style": style,
                "j": style * kept * (1.0 - repeated) if style is not None else None,
                "correct": metrics.is_correct(text, probe.answers) if probe.answers else None,
            }
        means = {key: bootstrap.interval(per[key], seed=seed)
                 for key in ("j", "marker_rate", "p_style", "chrf_masked", "correct", "identity", "distinct2",
                             "repetition", "length", "length_ratio")}
        means["markers_per_100_chars"] = bootstrap.interval(per["markers"], bootstrap.ratio(100.0), seed=seed)
        means["marker_diversity"] = bootstrap.interval(per["marker_counts"], bootstrap.diversity, seed=seed)
        if judged and name in judged:
            for index, result in enumerate(judged[name]):
                details[index]["variants"][name]["judge"] = result["outcome"] if result else None
            for axis in AXES:
                key = "judge_win_rate" if axis == "overall" else f"judge_{axis}"
                means[key] = bootstrap.interval([SCORE[r["outcome"][axis]] for r in judged[name] if r], seed=seed)
        summary[name] = {m.key: means[m.key] for m in METRICS if means.get(m.key) is not None}
    return summary, details
