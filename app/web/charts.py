"""Line charts as inline SVG, drawn on the server: /ops shows graphs with no JavaScript, no CDN and
nothing fetched by the browser.

Pure functions from numbers to ``Markup``. Every text that reaches the markup (series names come
from Prometheus labels, which anyone who can run a scraped process can set) goes through
``escape``; every number is formatted here. Values are drawn in their display unit (``Unit``:
milliseconds, percent), so that the y axis ticks are round numbers of what the reader sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from app.services.graphs import Unit

#: The viewBox: about the width a chart gets on the page (two per row), so 12-unit text reads as about 12 px.
WIDTH = 400
HEIGHT = 190
#: Margins around the plot: the time ticks below, the y tick labels (with their unit) on the left
#: (LEFT at least, more for longer labels: about CHAR_WIDTH per character at the font size of 12).
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 8, 22
CHAR_WIDTH = 7
#: Line colours, told apart also by readers with the common colour-vision deficiencies
#: (Okabe and Ito's palette, darkened where a line on white needs it).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#b8860b", "#56b4e9", "#1b1f24", "#8c1d18")
#: Time tick spacings to choose from, seconds: the first that gives at most MAX_TIME_TICKS ticks.
TIME_TICK_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_TIME_TICKS = 6
NO_DATA = "No data in this range"


@dataclass(frozen=True)
class Line:
    """One series as drawn: its name (unescaped) and its (unix seconds, raw value) points."""

    name: str
    points: Sequence[tuple[float, float]]
    colour: str


def lines_of(named: Iterable[tuple[str, Sequence[tuple[float, float]]]]) -> list[Line]:
    """Give each (name, points) a colour from the palette, in order."""
    return [Line(name, points, PALETTE[i % len(PALETTE)]) for i, (name, points) in enumerate(named)]


def format_number(value: float) -> str:
    """A short human number: ``0``, ``0.05``, ``1.25``, ``12.5``, ``250``, ``12.5k``, ``3M``."""
    size = abs(value)
    for threshold, divisor, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if size >= threshold:
            return format_number(value / divisor) + suffix
    if size == 0:
        return "0"
    if size < 1e-3:
        return f"{value:.1e}"
    if size < 1:
        return f"{value:.2g}"
    text = f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(value: float, unit: Unit) -> str:
    """A raw value in its display unit: ``format_value(0.1234, MILLISECONDS)`` is ``123 ms``."""
    shown = value * unit.scale
    return f"{format_number(shown)}{'' if unit.suffix == '%' else ' '}{unit.suffix}"


def nice_step(span: float, count: int) -> float:
    """A round tick spacing (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` ticks."""
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def value_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round ticks from at or below ``low`` to at or above ``high`` (the axis spans them)."""
    if high <= low:
        high = low + 1
    step = nice_step(high - low, count)
    first = math.floor(low / step)
    last = math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def time_ticks(start: float, end: float) -> list[float]:
    """Times on round minutes between ``start`` and ``end``, at most MAX_TIME_TICKS of them."""
    span = end - start
    spacing = next((s for s in TIME_TICK_STEPS if span / s <= MAX_TIME_TICKS), TIME_TICK_STEPS[-1])
    first = math.ceil(start / spacing) * spacing
    return [float(t) for t in range(int(first), int(end) + 1, spacing)]


def format_time(timestamp: float) -> str:
    """``12:05``, in UTC like every time the site shows."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%H:%M")


def segments(points: Sequence[tuple[float, float]], max_gap: float) -> list[list[tuple[float, float]]]:
    """``points`` split where consecutive ones are more than ``max_gap`` seconds apart: a series
    that stopped (a replica restarting) shows a gap rather than a straight line across it."""
    runs: list[list[tuple[float, float]]] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] <= max_gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


class Plot:
    """Maps (time, display value) to SVG coordinates inside the plot area, which starts at ``left``."""

    def __init__(self, start: float, end: float, low: float, high: float, left: float = LEFT) -> None:
        self.start, self.end, self.low, self.high, self.left = start, end, low, high, left
        self.width = WIDTH - left - RIGHT
        self.height = HEIGHT - TOP - BOTTOM

    def x(self, timestamp: float) -> float:
        share = (timestamp - self.start) / (self.end - self.start) if self.end > self.start else 0.0
        return round(self.left + min(1.0, max(0.0, share)) * self.width, 1)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return round(TOP + (1 - min(1.0, max(0.0, share))) * self.height, 1)


def render_chart(
    lines: Sequence[Line],
    *,
    start: float,
    end: float,
    step: float,
    unit: Unit,
    title: str,
    message: str = NO_DATA,
) -> Markup:
    """An ``<svg>`` of ``lines`` from ``start`` to ``end`` (unix seconds) with time and value axes;
    ``message`` in the middle of the plot, and no value axis, when there is no point to draw."""
    drawn = [line for line in lines if line.points]
    values = [value * unit.scale for line in drawn for _, value in line.points]
    ticks = value_ticks(min(0.0, *values), max(values)) if values else []
    labels = [format_value(tick, Unit(unit.suffix)) for tick in ticks]  # ticks are in the display unit
    left = min(WIDTH / 3, max([LEFT, *(CHAR_WIDTH * len(label) + 10 for label in labels)]))
    plot = Plot(start, end, ticks[0], ticks[-1], left) if ticks else Plot(start, end, 0.0, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        ' font-size="12" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        *value_axis(plot, ticks, labels),
        *time_axis(plot),
    ]
    if drawn:
        parts.extend(draw_line(plot, line, unit, max_gap=2 * step) for line in drawn)
    else:
        parts.append(
            f'<text class="chart-empty" x="{plot.left + plot.width / 2:.1f}" y="{TOP + plot.height / 2:.1f}"'
            f' text-anchor="middle" fill="#545d68">{escape(shorten(message))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def value_axis(plot: Plot, ticks: Sequence[float], labels: Sequence[str]) -> list[str]:
    """A grid line and its label (with the unit) at each value tick."""
    parts = []
    for tick, label in zip(ticks, labels, strict=True):
        y = plot.y(tick)
        parts.append(
            f'<line class="chart-grid" x1="{plot.left}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#d4d9e0"/>'
            f'<text x="{plot.left - 6}" y="{y}" dy="0.32em" text-anchor="end" fill="#545d68">{escape(label)}</text>'
        )
    return parts


def time_axis(plot: Plot) -> list[str]:
    """The time axis line, and ``12:05``-style labels under short ticks."""
    bottom = HEIGHT - BOTTOM
    parts = [
        f'<line class="chart-axis" x1="{plot.left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#737c87"/>'
    ]
    for tick in time_ticks(plot.start, plot.end):
        x = plot.x(tick)
        parts.append(
            f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}" stroke="#737c87"/>'
            f'<text x="{x}" y="{bottom + 16}" text-anchor="middle" fill="#545d68">{format_time(tick)}</text>'
        )
    return parts


def draw_line(plot: Plot, line: Line, unit: Unit, max_gap: float) -> str:
    """A series as polylines (one per run without a gap; a lone point as a dot), named by its title."""
    shapes = []
    for run in segments(line.points, max_gap):
        coordinates = [(plot.x(t), plot.y(v * unit.scale)) for t, v in run]
        if len(coordinates) == 1:
            (x, y) = coordinates[0]
            shapes.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{escape(line.colour)}"/>')
        else:
            points = " ".join(f"{x},{y}" for x, y in coordinates)
            shapes.append(
                f'<polyline points="{points}" fill="none" stroke="{escape(line.colour)}" stroke-width="1.75"'
                ' stroke-linejoin="round"/>'
            )
    return f'<g class="chart-line"><title>{escape(line.name)}</title>{"".join(shapes)}</g>'


def render_legend(lines: Sequence[Line], unit: Unit) -> Markup:
    """Each series' colour, name and latest value, as a list under the chart."""
    if not any(line.points for line in lines):
        return Markup("")
    items = [
        f'<li><svg class="swatch" width="14" height="4" aria-hidden="true"><rect width="14" height="4"'
        f' fill="{escape(line.colour)}"/></svg> {escape(line.name)}'
        f' <span class="legend-value">{escape(format_value(line.points[-1][1], unit))}</span></li>'
        for line in lines
        if line.points
    ]
    return Markup(f'<ul class="chart-legend">{"".join(items)}</ul>')


def shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
