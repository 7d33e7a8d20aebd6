"""The report's picture (matplotlib, Agg): one small panel a metric on a 0-1 scale, one bar a
variant with its 95% interval, the same colour for a variant in every panel."""

from __future__ import annotations

from pathlib import Path

from stylewrap.fsutil import atomic_write_bytes

# the per-axis judge rates stay in the table: the chart keeps to one judge panel
PANELS = ("j", "marker_rate", "p_style", "chrf_masked", "correct", "identity", "distinct2", "repetition",
          "judge_win_rate")
CJK_FONTS = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC")


def _use_cjk_font(matplotlib) -> None:
    """Variant names and titles may be Chinese: prefer an installed CJK font (fonts-wqy-zenhei)."""
    from matplotlib import font_manager

    import logging

    # WenQuanYi registers as weight 500: matplotlib says so on every lookup of "normal"
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    installed = {font.name for font in font_manager.fontManager.ttflist}
    found = [name for name in CJK_FONTS if name in installed]
    # DejaVu first: Latin text and symbols (−, ×) from it, CJK characters fall back to the CJK font
    matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans", *found, *matplotlib.rcParams["font.sans-serif"]]


def bar_chart(path: Path, variants: dict[str, dict], labels: dict[str, str]) -> Path | None:
    """PNG of every panel some variant has a value for; None when there is none."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _use_cjk_font(matplotlib)
    names = list(variants)
    panels = [key for key in PANELS if any(key in metrics for metrics in variants.values())]
    if not panels:
        return None
    columns = 2
    rows = (len(panels) + columns - 1) // columns
    height = 0.32 * len(names) + 0.9
    figure, axes = plt.subplots(rows, columns, figsize=(11, rows * height + 0.4), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for axis, key in zip(axes.flat, panels):
        means, low, high, colour = [], [], [], []
        for index, name in enumerate(names):
            value = variants[name].get(key)
            means.append(value["mean"] if value else 0.0)
            low.append(value["mean"] - value["low"] if value else 0.0)
            high.append(value["high"] - value["mean"] if value else 0.0)
            colour.append(colours[index % len(colours)] if value else "#dddddd")
        positions = list(range(len(names)))[::-1]
        axis.barh(positions, means, xerr=[low, high], color=colour, capsize=3, error_kw={"elinewidth": 1})
        axis.set_yticks(positions, names)
        axis.set_xlim(0, 1)
        axis.set_title(labels[key], fontsize=10, loc="left")
        axis.grid(axis="x", alpha=0.3)
        for position, mean, upper, name in zip(positions, means, high, names):
            if variants[name].get(key) and mean + upper <= 0.88:   # right of the interval, off the bar
                axis.text(mean + upper + 0.02, position, f"{mean:.2f}", va="center", fontsize=8)
            elif variants[name].get(key):   # no room on the right: inside the bar's end
                axis.text(mean - 0.03, position, f"{mean:.2f}", va="center", ha="right", fontsize=8, color="white")
            else:
                axis.text(0.02, position, "n/a", va="center", fontsize=8, color="#888888")
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
