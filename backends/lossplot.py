"""The loss curve PNG, drawn in pure Python (zlib + struct): a line, axes, grid and tick labels.

Why not matplotlib: the core install stays light (no plotting library), and starting a backend
env's python just to import matplotlib costs seconds at the end of every run, more than the rest
of stylewrap's overhead together (bench/train_overhead.py). A training curve needs no more.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

from stylewrap.fsutil import atomic_write_bytes

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 24, 52
WHITE, AXIS, GRID, LINE, TEXT = (255, 255, 255), (90, 90, 90), (228, 228, 228), (31, 119, 180), (40, 40, 40)
SCALE = 2   # font pixels per glyph pixel

# 3x5 glyphs, rows top to bottom
GLYPHS = {
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"), "-": ("000", "000", "111", "000", "000"),
    "+": ("000", "010", "111", "010", "000"), "e": ("000", "111", "111", "100", "111"),
    "s": ("011", "100", "010", "001", "110"), "t": ("010", "111", "010", "010", "011"),
    "p": ("110", "101", "110", "100", "100"), "l": ("100", "100", "100", "100", "111"),
    "o": ("000", "111", "101", "101", "111"), " ": ("000", "000", "000", "000", "000"),
}


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(WHITE) * width * height)

    def dot(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            offset = (y * self.width + x) * 3
            self.pixels[offset:offset + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color, thick: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            x, y = round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps)
            for dx in range(thick):
                for dy in range(thick):
                    self.dot(x + dx, y + dy, color)

    def text(self, x: int, y: int, text: str, color=TEXT) -> None:
        for index, char in enumerate(text):
            for row, bits in enumerate(GLYPHS.get(char, GLYPHS[" "])):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        for dx in range(SCALE):
                            for dy in range(SCALE):
                                self.dot(x + (index * 4 + col) * SCALE + dx, y + row * SCALE + dy, color)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3]) for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def text_width(text: str) -> int:
    return len(text) * 4 * SCALE


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=10 * magnitude)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def label(value: float) -> str:
    return f"{value:.4g}"


def draw_loss(points: list[tuple[float, float]], png_file: Path) -> Path:
    """Plot (step, loss) points to `png_file`."""
    canvas = Canvas(WIDTH, HEIGHT)
    steps, losses = [p[0] for p in points], [p[1] for p in points]
    x_ticks = nice_ticks(min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1)
    pad = (max(losses) - min(losses)) * 0.05
    y_ticks = nice_ticks(min(losses) - pad, max(losses) + pad)
    x_low, x_high = min(x_ticks[0], min(steps)), max(x_ticks[-1], max(steps))
    y_low, y_high = min(y_ticks[0], min(losses) - pad), max(y_ticks[-1], max(losses) + pad)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def to_x(step: float) -> int:
        return LEFT + round((step - x_low) / ((x_high - x_low) or 1) * plot_w)

    def to_y(loss: float) -> int:
        return TOP + plot_h - round((loss - y_low) / ((y_high - y_low) or 1) * plot_h)

    for tick in y_ticks:
        y = to_y(tick)
        canvas.line(LEFT, y, LEFT + plot_w, y, GRID)
        canvas.text(LEFT - 8 - text_width(label(tick)), y - 5, label(tick))
    for tick in x_ticks:
        x = to_x(tick)
        canvas.line(x, TOP, x, TOP + plot_h, GRID)
        canvas.text(x - text_width(label(tick)) // 2, TOP + plot_h + 8, label(tick))
    canvas.line(LEFT, TOP, LEFT, TOP + plot_h, AXIS)
    canvas.line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, AXIS)
    canvas.text(LEFT + plot_w // 2 - text_width("step") // 2, HEIGHT - 18, "step")
    canvas.text(8, 4, "loss")
    previous = None
    for step, loss in points:
        here = (to_x(step), to_y(loss))
        if previous is not None:
            canvas.line(*previous, *here, LINE, thick=2)
        previous = here
    if len(points) == 1:
        canvas.line(previous[0] - 2, previous[1], previous[0] + 2, previous[1], LINE, thick=3)
    return atomic_write_bytes(png_file, canvas.png())
