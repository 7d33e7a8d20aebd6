"""eval.json, report.md and report.html (templates/eval/*.j2) in the output folder, with the
bar chart beside them. The templates get display-ready values; the numbers live in eval.json."""

from __future__ import annotations

from html import escape
from pathlib import Path

from stylewrap.backends.render import render
from stylewrap.fsutil import atomic_write_json, atomic_write_text

CHART = "metrics.png"
LOSS_CURVE = "loss.png"
HEADLINE_AXES = (("style", "p_style", "marker_rate"), ("content", "chrf_masked", None), ("health", "repetition", None))


def _metrics():
    from stylewrap.eval.scoring import METRICS

    return METRICS


def format_value(value: dict | None, metric, *, interval: bool = True) -> str:
    if not value:
        return "–"
    if metric.percent:
        text = f"{100 * value['mean']:.0f}%"
        bounds = f"{100 * value['low']:.0f}–{100 * value['high']:.0f}"
    elif metric.key == "length":
        text, bounds = f"{value['mean']:.0f}", f"{value['low']:.0f}–{value['high']:.0f}"
    else:
        text, bounds = f"{value['mean']:.2f}", f"{value['low']:.2f}–{value['high']:.2f}"
    return f"{text} [{bounds}]" if interval else text


def highlighted(text: str, spans: list) -> str:
    """The answer as HTML with each style marker in <mark>."""
    out, cursor = [], 0
    for start, end in spans:
        out += [escape(text[cursor:start]), f"<mark>{escape(text[start:end])}</mark>"]
        cursor = end
    out.append(escape(text[cursor:]))
    return "".join(out)


def headline(result: dict) -> list[dict]:
    """One line a variant: J first, then what it is made of (style, content kept, health)."""
    lines = []
    for name, values in result["variants"].items():
        j = values.get("j")
        axes = []
        for label, key, fallback in HEADLINE_AXES:
            chosen = key if values.get(key) else fallback
            value = values.get(chosen) if chosen else None
            if value and chosen == "repetition":
                axes.append((label, f"{1 - value['mean']:.2f}", "1 − repetition"))
            elif value:
                axes.append((label, f"{value['mean']:.2f}", chosen))
        lines.append({"name": name, "j": f"{j['mean']:.2f}" if j else None,
                      "j_interval": f"{j['low']:.2f}–{j['high']:.2f}" if j else None, "axes": axes})
    return lines


def table(result: dict) -> list[dict]:
    rows = []
    for metric in _metrics():
        values = [result["variants"][name].get(metric.key) for name in result["variants"]]
        if any(values):
            arrow = {"higher": "↑", "lower": "↓"}.get(metric.better, "")
            rows.append({"key": metric.key, "label": metric.label, "arrow": arrow,
                         "cells": [format_value(v, metric) for v in values],
                         "short": [format_value(v, metric, interval=False) for v in values]})
    return rows


def probe_rows(result: dict, names: list[str]) -> list[dict]:
    rows = []
    for row in result["rows"]:
        cells = []
        for name in names:
            detail = row["variants"][name]
            cells.append({"name": name, "answer": detail["answer"],
                          "html": highlighted(detail["answer"], detail.get("marker_spans", [])),
                          "flags": detail.get("flags", []), "correct": detail.get("correct"),
                          "judge": (detail.get("judge") or {}).get("overall"),
                          "p_style": detail.get("p_style"), "markers": detail.get("markers")})
        rows.append({"question": row["question"], "kind": row["kind"], "known_answer": row.get("known_answer", []),
                     "cells": cells})
    return rows


# probe kinds that test the style itself, not what the model knew before it
STYLE_KINDS = ("identity",)


def ability_by_kind(result: dict, names: list[str]) -> list[dict]:
    """Per general probe kind (everyday, knowledge, arithmetic, ...), each variant's share of known
    answers right, content kept (chrF to the reference, markers masked) and broken answers: whether
    the model kept its general ability (what `data.mix` is for)."""
    kinds: dict[str, list[dict]] = {}
    for row in result["rows"]:
        if row["kind"] not in STYLE_KINDS:
            kinds.setdefault(row["kind"], []).append(row)
    table = []
    for kind, rows in kinds.items():
        cells = []
        for name in names:
            details = [row["variants"][name] for row in rows]
            known = [d["correct"] for d in details if d.get("correct") is not None]
            kept = [d["chrf_masked"] for d in details if d.get("chrf_masked") is not None]
            cells.append({"correct": f"{sum(known)}/{len(known)}" if known else "–",
                          "kept": f"{sum(kept) / len(kept):.2f}" if kept else "–",
                          "broken": sum(1 for d in details if d.get("flags"))})
        table.append({"kind": kind, "probes": len(rows), "cells": cells})
    return table


def write_reports(out_dir: Path, result: dict, *, kind: str, chart: bool) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(result["variant_info"])
    labels = {m.key: m.label for m in _metrics()} if chart else {}
    picture = None
    if chart and result["variants"]:
        from stylewrap.eval.chart import bar_chart

        picture = bar_chart(out_dir / CHART, result["variants"], labels)
    loss_curve = _copy_loss_curve(out_dir, result.get("run"))
    eval_json = atomic_write_json(out_dir / "eval.json", {**result, "chart": picture.name if picture else None})
    flagged = sum(1 for row in result["rows"] for name in names if row["variants"][name].get("flags"))
    context = {"kind": kind, "result": result, "names": names, "headline": headline(result) if result["variants"] else [],
               "table": table(result) if result["variants"] else [], "rows": probe_rows(result, names),
               "chart": picture.name if picture else None, "flagged": flagged, "loss_curve": loss_curve,
               "info": result["variant_info"], "measured": bool(result["variants"]),
               "ability": ability_by_kind(result, names) if result["variants"] else []}
    markdown = atomic_write_text(out_dir / "report.md", render("eval/report.md.j2", **context))
    html = atomic_write_text(out_dir / "report.html", render("eval/report.html.j2", **context))
    return {"json": eval_json, "markdown": markdown, "html": html}


def _copy_loss_curve(out_dir: Path, run: dict | None) -> str | None:
    """The run's loss curve beside the report, so the folder is whole when moved or sent."""
    if not run or not run.get("loss_png"):
        return None
    from stylewrap.fsutil import atomic_write_bytes

    atomic_write_bytes(out_dir / LOSS_CURVE, Path(run["loss_png"]).read_bytes())
    return LOSS_CURVE


def summary_lines(result) -> list[str]:
    """What the command prints: J and the main metrics a variant, then where the reports are."""
    summary = result.summary
    lines = []
    if summary["variants"]:
        keys = [k for k in ("j", "marker_rate", "p_style", "chrf_masked", "correct", "repetition", "judge_win_rate")
                if any(k in v for v in summary["variants"].values())]
        width = max(len(name) for name in [*summary["variants"], "variant"]) + 2
        lines.append("variant".ljust(width) + "".join(k.rjust(16) for k in keys))
        for name, values in summary["variants"].items():
            cells = [f"{values[k]['mean']:.2f} ±{(values[k]['high'] - values[k]['low']) / 2:.2f}" if k in values else "–"
                     for k in keys]
            lines.append(name.ljust(width) + "".join(c.rjust(16) for c in cells))
        if summary.get("classifier"):
            lines.append(f"p_style classifier held-out AUC: {summary['classifier']['held_out_auc']:.3f}")
    flagged = sum(1 for row in summary["rows"] for detail in row["variants"].values() if detail.get("flags"))
    if flagged:
        lines.append(f"{flagged} answers flagged (empty, repeated or garbled): see the report")
    lines += [f"report: {result.markdown}", f"report: {result.html}", f"data: {result.eval_json}"]
    return lines
