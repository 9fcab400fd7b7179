"""A small line chart as a PNG, in pure Python (zlib + struct): no matplotlib, no fonts.

`make bench` draws scaling.png with it, and the unit tests run it inside the app image,
which has no plotting library. Text uses a built-in 5x7 pixel font (upper case, digits
and a little punctuation), scaled up; that is enough for titles, ticks and legends.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (34, 34, 34)
GRID: Color = (225, 225, 225)
AXIS: Color = (120, 120, 120)
BLUE: Color = (31, 119, 180)
ORANGE: Color = (255, 127, 14)
GREEN: Color = (44, 160, 44)
RED: Color = (214, 39, 40)
GRAY: Color = (150, 150, 150)
PURPLE: Color = (148, 103, 189)

# 5x7 glyphs, one string of 7 rows of 5 columns each ('#' = ink).
_GLYPHS: dict[str, str] = {
    " ": ".....|.....|.....|.....|.....|.....|.....",
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
    "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
    "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
    "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
    "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
    "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
    "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#",
    "B": "####.|#...#|#...#|####.|#...#|#...#|####.",
    "C": ".###.|#...#|#....|#....|#....|#...#|.###.",
    "D": "###..|#..#.|#...#|#...#|#...#|#..#.|###..",
    "E": "#####|#....|#....|####.|#....|#....|#####",
    "F": "#####|#....|#....|####.|#....|#....|#....",
    "G": ".###.|#...#|#....|#.###|#...#|#...#|.####",
    "H": "#...#|#...#|#...#|#####|#...#|#...#|#...#",
    "I": ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
    "J": "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
    "K": "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
    "L": "#....|#....|#....|#....|#....|#....|#####",
    "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
    "N": "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
    "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
    "P": "####.|#...#|#...#|####.|#....|#....|#....",
    "Q": ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
    "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
    "S": ".####|#....|#....|.###.|....#|....#|####.",
    "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
    "U": "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
    "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
    "W": "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
    "X": "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
    "Y": "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
    "Z": "#####|....#|...#.|..#..|.#...|#....|#####",
    ".": ".....|.....|.....|.....|.....|.##..|.##..",
    ",": ".....|.....|.....|.....|.##..|..#..|.#...",
    ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
    ";": ".....|.##..|.##..|.....|.##..|..#..|.#...",
    "/": "....#|....#|...#.|..#..|.#...|#....|#....",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
    "-": ".....|.....|.....|#####|.....|.....|.....",
    "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
    "=": ".....|.....|#####|.....|#####|.....|.....",
    "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
    "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
    ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...",
    "_": ".....|.....|.....|.....|.....|.....|#####",
    "'": "..#..|..#..|.#...|.....|.....|.....|.....",
    "?": ".###.|#...#|....#|...#.|..#..|.....|..#..",
    "[": ".###.|.#...|.#...|.#...|.#...|.#...|.###.",
    "]": ".###.|...#.|...#.|...#.|...#.|...#.|.###.",
    "*": ".....|..#..|#.#.#|.###.|#.#.#|..#..|.....",
}
_FONT: dict[str, tuple[tuple[bool, ...], ...]] = {
    char: tuple(tuple(cell == "#" for cell in row) for row in rows.split("|")) for char, rows in _GLYPHS.items()
}
GLYPH_W, GLYPH_H = 5, 7


def text_width(text: str, scale: int) -> int:
    return len(text) * (GLYPH_W + 1) * scale - scale if text else 0


class Canvas:
    """An RGB raster with the few drawing operations a line chart needs."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def get(self, x: int, y: int) -> Color:
        i = (y * self.width + x) * 3
        return (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Filled, both corners included."""
        for y in range(max(0, min(y0, y1)), min(self.height, max(y0, y1) + 1)):
            for x in range(max(0, min(x0, x1)), min(self.width, max(x0, x1) + 1)):
                self.set(x, y, color)

    def line(
        self, x0: float, y0: float, x1: float, y1: float, color: Color, width: int = 1, dash: tuple[int, int] = (0, 0)
    ) -> None:
        """A straight line of ``width`` pixels; ``dash`` = (on, off) lengths in pixels, (0, 0) for solid."""
        length = math.hypot(x1 - x0, y1 - y0)
        steps = max(1, int(length * 2))
        on, off = dash
        low, high = -((width - 1) // 2), width // 2
        for step in range(steps + 1):
            t = step / steps
            if on and (t * length) % (on + off) >= on:
                continue
            x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
            for dx in range(low, high + 1):
                for dy in range(low, high + 1):
                    self.set(round(x + dx), round(y + dy), color)

    def disc(self, cx: float, cy: float, radius: float, color: Color) -> None:
        for y in range(int(cy - radius), int(cy + radius) + 1):
            for x in range(int(cx - radius), int(cx + radius) + 1):
                if (x - cx) ** 2 + (y - cy) ** 2 <= radius**2:
                    self.set(x, y, color)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        """``text`` (upper-cased; unknown characters as '?') with its top-left corner at x, y."""
        for index, char in enumerate(text.upper()):
            glyph = _FONT.get(char, _FONT["?"])
            ox = x + index * (GLYPH_W + 1) * scale
            for row, cells in enumerate(glyph):
                for col, ink in enumerate(cells):
                    if ink:
                        self.rect(
                            ox + col * scale,
                            y + row * scale,
                            ox + col * scale + scale - 1,
                            y + row * scale + scale - 1,
                            color,
                        )

    def text_vertical(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        """``text`` rotated 90 degrees counter-clockwise, reading bottom to top from (x, y)."""
        for index, char in enumerate(text.upper()):
            glyph = _FONT.get(char, _FONT["?"])
            oy = y - index * (GLYPH_W + 1) * scale
            for row, cells in enumerate(glyph):
                for col, ink in enumerate(cells):
                    if ink:
                        px, py = x + row * scale, oy - col * scale
                        self.rect(px, py - scale + 1, px + scale - 1, py, color)

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3]) for y in range(self.height)
        )
        return png_bytes(self.width, self.height, raw)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, filtered_rows: bytes) -> bytes:
    """An 8-bit RGB PNG from rows that already carry their filter byte."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(filtered_rows, 9))
        + _chunk(b"IEND", b"")
    )


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis maximum >= value and its tick step (1, 2, 2.5 or 5 times a power of ten): five ticks or fewer."""
    if value <= 0:
        return 1.0, 0.2
    raw_step = value / 5
    magnitude = 10 ** math.floor(math.log10(raw_step))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * 5 >= value * 0.999 or factor == 10:
            break
    top = math.ceil(value / step - 1e-9) * step
    return top, step


def format_tick(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}K"
    if value == int(value):
        return str(int(value))
    return f"{value:g}"


def format_value(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclass
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    color: Color
    dash: tuple[int, int] = (0, 0)
    markers: bool = True
    width: int = 3
    #: Print each point's value above it.
    values: bool = False


@dataclass
class Panel:
    title: str
    y_label: str
    x_label: str
    series: list[Series] = field(default_factory=list)
    x_ticks: Sequence[float] = ()


def draw_panel(canvas: Canvas, panel: Panel, left: int, top: int, width: int, height: int) -> None:
    """One chart in the box (left, top, width, height): title, axes, grid, series and legend."""
    scale = 2
    canvas.text(left + (width - text_width(panel.title, 3)) // 2, top, panel.title, BLACK, 3)
    plot_left = left + 80
    plot_top = top + 40 + 18 * len(panel.series)
    plot_right = left + width - 15
    plot_bottom = top + height - 55
    xs = [x for s in panel.series for x, _ in s.points] + list(panel.x_ticks)
    ys = [y for s in panel.series for _, y in s.points if y is not None and math.isfinite(y)]
    x_max = max(xs) if xs else 1.0
    x_min = 0.0
    y_top, y_step = nice_ceiling(max(ys) * 1.05 if ys else 1.0)

    def px(x: float) -> float:
        return plot_left + (x - x_min) / ((x_max + 0.5) - x_min) * (plot_right - plot_left)

    def py(y: float) -> float:
        return plot_bottom - (y / y_top) * (plot_bottom - plot_top)

    # Grid and y ticks.
    steps = round(y_top / y_step)
    for i in range(steps + 1):
        value = i * y_step
        y = round(py(value))
        canvas.line(plot_left, y, plot_right, y, GRID)
        label = format_tick(value)
        canvas.text(plot_left - 8 - text_width(label, scale), y - 7, label, AXIS, scale)
    # Axes and x ticks.
    canvas.line(plot_left, plot_top, plot_left, plot_bottom, AXIS, 2)
    canvas.line(plot_left, plot_bottom, plot_right, plot_bottom, AXIS, 2)
    for tick in panel.x_ticks:
        x = round(px(tick))
        canvas.line(x, plot_bottom, x, plot_bottom + 6, AXIS, 2)
        label = format_tick(tick)
        canvas.text(x - text_width(label, scale) // 2, plot_bottom + 12, label, AXIS, scale)
    canvas.text(
        (plot_left + plot_right - text_width(panel.x_label, scale)) // 2, plot_bottom + 34, panel.x_label, BLACK, scale
    )
    canvas.text_vertical(left + 4, (plot_top + plot_bottom + text_width(panel.y_label, scale)) // 2, panel.y_label)
    # Series, then the legend above the plot.
    for series in panel.series:
        shown = [(x, y) for x, y in series.points if y is not None and math.isfinite(y)]
        points = [(px(x), py(y)) for x, y in shown]
        for (xa, ya), (xb, yb) in itertools.pairwise(points):
            canvas.line(xa, ya, xb, yb, series.color, series.width, series.dash)
        if series.markers:
            for x, y in points:
                canvas.disc(x, y, 5, series.color)
        if series.values:
            for (x, y), (_, value) in zip(points, shown, strict=True):
                label = format_value(value)
                canvas.text(round(x) - text_width(label, scale) // 2, round(y) - 24, label, series.color, scale)
    for index, series in enumerate(panel.series):
        y = top + 36 + 18 * index
        canvas.line(plot_left, y + 6, plot_left + 30, y + 6, series.color, series.width, series.dash)
        canvas.text(plot_left + 40, y, series.label, BLACK, scale)


def render(panels: Iterable[Panel], panel_width: int = 600, panel_height: int = 500, footer: str = "") -> bytes:
    """Panels side by side, an optional footer line; the PNG's bytes."""
    panels = list(panels)
    footer_height = 30 if footer else 0
    canvas = Canvas(panel_width * len(panels), panel_height + footer_height + 10)
    for index, panel in enumerate(panels):
        draw_panel(canvas, panel, index * panel_width + 10, 10, panel_width - 20, panel_height)
    if footer:
        canvas.text(20, panel_height + 12, footer, AXIS, 2)
    return canvas.png()


def write_png(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
