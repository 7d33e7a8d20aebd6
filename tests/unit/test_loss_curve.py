"""The loss curve: drawn by matplotlib in a backend env's python (here this venv's, which has it as
both backend envs do), through the same script and runner call `stylewrap train` uses."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from stylewrap.backends.base import TableBackend
from stylewrap.backends.trainlog import draw_loss_curve

SMOOTH_RGB = (0x1F, 0x77, 0xB4)   # backends/_loss_curve.py SMOOTH_COLOR


class ThisPython(TableBackend):
    name = "test"

    def python(self) -> Path | None:
        return Path(sys.executable)


def progress(path: Path, losses: list[float]) -> Path:
    path.write_text("".join(json.dumps({"step": i, "total": len(losses), "loss": loss}) + "\n"
                            for i, loss in enumerate(losses, start=1)))
    return path


def curve_pixels(png: Path) -> list[tuple[int, int]]:
    from matplotlib import image

    pixels = (image.imread(png)[:, :, :3] * 255).round().astype(int)
    rows, cols = ((abs(pixels - SMOOTH_RGB).sum(axis=2) <= 6)).nonzero()
    return list(zip(cols.tolist(), rows.tolist()))


def test_a_long_falling_run_is_drawn_from_top_left_to_bottom_right(tmp_path):
    losses = [0.6 + 2.2 * math.exp(-step / 500) + 0.08 * math.sin(step * 7.3) for step in range(1, 3001)]
    png = tmp_path / "loss.png"
    assert draw_loss_curve(ThisPython(), progress(tmp_path / "progress.jsonl", losses), png, "run-1: test lora") is None
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    curve = [(x, y) for x, y in curve_pixels(png) if y > 60]   # below the legend
    width = max(x for x, _ in curve)
    left = [y for x, y in curve if x < width / 4]
    right = [y for x, y in curve if x > 3 * width / 4]
    assert left and right and sum(left) / len(left) < sum(right) / len(right) - 100   # image y grows downward


def test_a_run_of_a_few_steps_still_gets_a_curve(tmp_path):
    png = tmp_path / "loss.png"
    assert draw_loss_curve(ThisPython(), progress(tmp_path / "progress.jsonl", [2.0, 1.8, 1.7]), png, "short") is None
    assert curve_pixels(png)


def test_no_python_to_draw_with_is_said_not_raised(tmp_path):
    class NoEnv(TableBackend):
        name = "test"

    why = draw_loss_curve(NoEnv(), progress(tmp_path / "progress.jsonl", [1.0]), tmp_path / "loss.png", "t")
    assert why == "no python in the test environment to draw it with" and not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize("content", ["", '{"step": 1, "loss": null}\n'])
def test_a_log_without_losses_draws_nothing(tmp_path, content):
    (tmp_path / "progress.jsonl").write_text(content)
    why = draw_loss_curve(ThisPython(), tmp_path / "progress.jsonl", tmp_path / "loss.png", "t")
    assert why is not None and "no loss values" in why and not (tmp_path / "loss.png").exists()


def test_eval_losses_are_drawn_as_points(tmp_path):
    eval_rgb = (0xE6, 0x55, 0x0D)   # backends/_loss_curve.py EVAL_COLOR
    records = [{"step": i, "total": 40, "loss": 2.0 - i / 40} for i in range(1, 41)]
    records += [{"step": step, "total": 40, "loss": None, "eval_loss": 1.9 - step / 50} for step in (10, 20, 30, 40)]
    path = tmp_path / "progress.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    png = tmp_path / "loss.png"
    assert draw_loss_curve(ThisPython(), path, png, "with eval") is None
    from matplotlib import image

    pixels = (image.imread(png)[:, :, :3] * 255).round().astype(int)
    assert (abs(pixels - eval_rgb).sum(axis=2) <= 6).sum() > 50   # orange dots on the plot


def test_an_eval_line_of_the_backend_log_becomes_an_eval_point():
    from stylewrap.backends.base import get_backend

    for name in ("llamafactory", "swift"):
        backend = get_backend(name)
        step_key = backend.log_fields.step_of_total or backend.log_fields.step
        line = {step_key: "10/40" if backend.log_fields.step_of_total else 10, "eval_loss": 1.25}
        if not backend.log_fields.step_of_total:
            line[backend.log_fields.total] = 40
        progress_row = backend.read_progress(line)
        assert progress_row is not None and progress_row.eval_loss == 1.25 and progress_row.loss is None, name


def test_the_last_value_of_a_rising_run_is_labelled_inside_the_frame(tmp_path):
    # a short preference run's loss can rise: its last point is the top of the plot, and a label
    # above it ran into the frame and the title
    from matplotlib import image

    png = tmp_path / "loss.png"
    assert draw_loss_curve(ThisPython(), progress(tmp_path / "progress.jsonl", [11.8, 12.38, 12.51]), png, "rising") is None
    pixels = (image.imread(png)[:, :, :3] * 255).round().astype(int)
    dark = (pixels.sum(axis=2) < 100)
    frame_top = next(row for row in range(dark.shape[0]) if dark[row].sum() > dark.shape[1] / 2)  # the axes' top edge
    # nothing curve-coloured (the line, the last point's marker, its label) crosses the frame
    assert min(y for _, y in curve_pixels(png)) > frame_top, frame_top
