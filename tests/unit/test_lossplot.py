"""The pure-Python loss PNG decodes as a real PNG and shows the curve where it should be."""

from __future__ import annotations

import struct
import zlib

from stylewrap.backends.lossplot import HEIGHT, LINE, WIDTH, draw_loss, nice_ticks


def decode(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color_type) == (8, 2)
    return width, height, zlib.decompress(chunks[b"IDAT"])


def pixel(raw: bytes, width: int, x: int, y: int) -> tuple[int, int, int]:
    start = y * (1 + width * 3) + 1 + x * 3
    return tuple(raw[start:start + 3])


def test_falling_loss_is_drawn_from_top_left_to_bottom_right(tmp_path):
    path = draw_loss([(step, 3.0 - step / 10) for step in range(1, 21)], tmp_path / "loss.png")
    width, height, raw = decode(path.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT) and len(raw) == height * (1 + width * 3)
    curve = [(x, y) for y in range(height) for x in range(width) if pixel(raw, width, x, y) == LINE]
    assert curve
    left = [y for x, y in curve if x < width // 3]
    right = [y for x, y in curve if x > 2 * width // 3]
    assert sum(left) / len(left) < sum(right) / len(right)   # image y grows downward


def test_single_point_and_flat_curves_still_draw(tmp_path):
    for points in ([(1, 2.0)], [(1, 2.0), (2, 2.0), (3, 2.0)]):
        _, _, raw = decode(draw_loss(points, tmp_path / "loss.png").read_bytes())
        assert bytes(LINE) in raw


def test_ticks_are_round_numbers_covering_the_range():
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    ticks = nice_ticks(6.383, 6.419)
    assert ticks[0] >= 6.383 and ticks[-1] <= 6.419 and len(ticks) >= 3
