"""Draw a run's loss curve: `python plot_loss.py progress.jsonl loss.png TITLE`.

Runs inside a backend environment's python (which has matplotlib) so the stylewrap core needs no
plotting library; it imports nothing from stylewrap.
"""

import json
import sys


def main(progress_file: str, png_file: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(progress_file, encoding="utf-8") as handle:
        points = [json.loads(line) for line in handle if line.strip()]
    points = [p for p in points if p.get("loss") is not None]
    steps = [p["step"] for p in points]
    losses = [p["loss"] for p in points]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot(steps, losses, marker="o" if len(points) < 30 else None, linewidth=1.5, label="training loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
