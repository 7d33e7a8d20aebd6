"""Draws a run's loss curve with matplotlib: `_loss_curve.py PROGRESS_JSONL PNG TITLE`.

Runs in the backend environment's python through `stylewrap.runner.script_invocation` (both
backends ship matplotlib; the core install has no plotting library), so it imports nothing from
stylewrap. PROGRESS_JSONL is the run's progress.jsonl: one {"step", "loss", ...} per logged step,
and {"step", "eval_loss"} where the validation set was scored. The raw loss is drawn faint, its
moving average bold (the smoothing LLaMA-Factory's own training_loss.png uses: stronger the more
steps there are), eval points as orange dots, and the PNG is replaced atomically.
"""

import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

RAW_COLOR, SMOOTH_COLOR, EVAL_COLOR = "#9ecae1", "#1f77b4", "#e6550d"


def smoothed(values: list[float]) -> list[float]:
    """Exponential moving average, weight 0 for a handful of points rising to 0.9 for thousands."""
    weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    out, last = [], values[0]
    for value in values:
        last = last * weight + (1 - weight) * value
        out.append(last)
    return out


def main(progress_file: str, png_file: str, title: str) -> None:
    steps, losses, eval_steps, eval_losses = [], [], [], []
    with open(progress_file, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("loss") is not None:
                steps.append(record["step"])
                losses.append(float(record["loss"]))
            if record.get("eval_loss") is not None and record.get("step") is not None:
                eval_steps.append(record["step"])
                eval_losses.append(float(record["eval_loss"]))
    if not losses:
        raise SystemExit("no loss values to draw")
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100, layout="constrained")
    if len(losses) >= 10:
        axes.plot(steps, losses, color=RAW_COLOR, linewidth=1, label="loss")
        axes.plot(steps, smoothed(losses), color=SMOOTH_COLOR, linewidth=2, label="smoothed")
        axes.legend(loc="upper right")
    else:
        axes.plot(steps, losses, color=SMOOTH_COLOR, linewidth=2, marker="o", label="loss")
    if eval_losses:
        axes.plot(eval_steps, eval_losses, color=EVAL_COLOR, linestyle="none", marker="o", label="eval loss")
        axes.legend(loc="upper right")
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("loss")
    axes.grid(True, color="#e5e5e5")
    # below the last point when it is in the upper half (a rising loss): above it, the label ran into the frame
    upper_half = losses[-1] > (min(losses) + max(losses)) / 2
    axes.annotate(f"last {losses[-1]:.4g}", xy=(steps[-1], losses[-1]), xytext=(-6, -10 if upper_half else 8),
                  textcoords="offset points", ha="right", va="top" if upper_half else "bottom", color=SMOOTH_COLOR)
    partial = f"{png_file}.partial"
    figure.savefig(partial, format="png")
    os.replace(partial, png_file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
