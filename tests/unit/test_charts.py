"""The SVG line charts of /ops (app.web.charts): well-formed, inside their viewBox, escaped,
readable axes, and a message where there is nothing to draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.services.graphs import MILLISECONDS, PERCENT, REQUESTS_PER_SECOND, SECONDS, Unit
from app.web import charts

SVG = "{http://www.w3.org/2000/svg}"
#: 12:00:00 UTC on 14 November 2023: the ticks of a 15-minute range are easy to name.
NOON = 1699963200
HOSTILE = '<script>alert("x")</script>&'


def render(lines: list[charts.Line], unit: Unit = REQUESTS_PER_SECOND, **kwargs: object) -> ET.Element:
    markup = charts.render_chart(
        lines, start=NOON, end=NOON + 900, step=10, unit=unit, title=kwargs.pop("title", "Requests"), **kwargs
    )
    return ET.fromstring(str(markup))  # raises on anything that is not well-formed


def ramp(count: int = 91, scale: float = 1.0) -> list[tuple[float, float]]:
    return [(NOON + 10 * i, scale * i) for i in range(count)]


def polyline_points(svg: ET.Element) -> list[tuple[float, float]]:
    return [
        (float(x), float(y))
        for polyline in svg.iter(f"{SVG}polyline")
        for x, y in (pair.split(",") for pair in polyline.get("points", "").split())
    ]


def texts(svg: ET.Element) -> list[str]:
    return [text.text or "" for text in svg.iter(f"{SVG}text")]


def test_every_point_is_drawn_inside_the_viewbox() -> None:
    svg = render(charts.lines_of([("web-1", ramp()), ("web-2", ramp(scale=-0.5))]))
    _, _, width, height = (float(n) for n in svg.get("viewBox", "").split())
    points = polyline_points(svg)
    assert len(points) == 2 * 91
    assert all(charts.LEFT <= x <= width - charts.RIGHT for x, _ in points)
    assert all(charts.TOP <= y <= height - charts.BOTTOM for _, y in points)
    (axis,) = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "chart-axis"]
    assert points[0][0] == float(axis.get("x1", "")) and points[90][0] == width - charts.RIGHT, "the range spans it"
    colours = {polyline.get("stroke") for polyline in svg.iter(f"{SVG}polyline")}
    assert colours == set(charts.PALETTE[:2])


def test_a_hostile_series_name_is_escaped_in_the_chart_and_the_legend() -> None:
    lines = charts.lines_of([(HOSTILE, ramp(3))])
    svg_markup = str(charts.render_chart(lines, start=NOON, end=NOON + 900, step=10, unit=SECONDS, title=HOSTILE))
    legend = str(charts.render_legend(lines, SECONDS))
    for markup in (svg_markup, legend):
        assert "<script>" not in markup
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in markup
    svg = ET.fromstring(svg_markup)
    assert svg.get("aria-label") == HOSTILE, "escaped once, read back as written"
    assert [t.text for t in svg.iter(f"{SVG}title")] == [HOSTILE, HOSTILE]
    ET.fromstring(legend)


def test_no_data_shows_a_message_inside_the_plot() -> None:
    svg = render([], message=charts.NO_DATA)
    assert polyline_points(svg) == []
    assert not [t for t in svg.iter(f"{SVG}line") if t.get("class") == "chart-grid"], "no value axis for nothing"
    (empty,) = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-empty"]
    assert empty.text == "No data in this range"
    assert charts.LEFT < float(empty.get("x", "0")) < float(svg.get("viewBox", "").split()[2])
    assert str(charts.render_legend([], SECONDS)) == ""


def test_a_series_without_points_is_no_data_too() -> None:
    svg = render(charts.lines_of([("web-1", [])]), message="The query failed <500>")
    assert "The query failed <500>" in texts(svg)


def test_the_axes_have_time_ticks_and_value_ticks_with_their_unit() -> None:
    svg = render(charts.lines_of([("p99", ramp(scale=0.001))]), unit=MILLISECONDS)  # up to 90 ms
    labels = texts(svg)
    assert [t for t in labels if ":" in t] == ["12:00", "12:05", "12:10", "12:15"]
    value_labels = [t for t in labels if t.endswith(" ms")]
    assert value_labels[0] == "0 ms" and value_labels[-1] == "100 ms"
    assert 3 <= len(value_labels) <= 7


def test_a_gap_in_a_series_breaks_its_line() -> None:
    points = [*ramp(10), *[(t + 600, v) for t, v in ramp(10)]]  # 10 minutes without points
    svg = render(charts.lines_of([("web-1", points)]))
    assert len(list(svg.iter(f"{SVG}polyline"))) == 2
    lone = render(charts.lines_of([("web-1", [(NOON + 60, 1.0)])]))
    assert len(list(lone.iter(f"{SVG}circle"))) == 1, "a single point is a dot"


def test_the_legend_shows_each_colour_name_and_latest_value() -> None:
    lines = charts.lines_of([("hits", [(NOON, 0.5), (NOON + 10, 0.875)])])
    legend = ET.fromstring(str(charts.render_legend(lines, PERCENT)))
    (item,) = legend.iter("li")
    assert item.find("svg/rect").get("fill") == charts.PALETTE[0]  # type: ignore[union-attr]
    assert "hits" in "".join(item.itertext()) and "87.5%" in "".join(item.itertext())


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0.1234, MILLISECONDS, "123 ms"),
        (0.0042, MILLISECONDS, "4.2 ms"),
        (0.875, PERCENT, "87.5%"),
        (1.0, PERCENT, "100%"),
        (0, REQUESTS_PER_SECOND, "0 req/s"),
        (0.05, REQUESTS_PER_SECOND, "0.05 req/s"),
        (12.345, REQUESTS_PER_SECOND, "12.3 req/s"),
        (12345, REQUESTS_PER_SECOND, "12.3k req/s"),
        (2_500_000, REQUESTS_PER_SECOND, "2.5M req/s"),
        (1.5, SECONDS, "1.5 s"),
    ],
)
def test_values_read_in_their_unit(value: float, unit: Unit, shown: str) -> None:
    assert charts.format_value(value, unit) == shown


def test_time_ticks_fall_on_round_minutes() -> None:
    assert [charts.format_time(t) for t in charts.time_ticks(NOON - 3600 + 7, NOON + 7)] == [
        "11:10",
        "11:20",
        "11:30",
        "11:40",
        "11:50",
        "12:00",
    ]


def test_value_ticks_are_round_and_span_the_data() -> None:
    assert charts.value_ticks(0, 87.5) == [0, 25, 50, 75, 100]
    assert charts.value_ticks(0, 0) == [0, 0.25, 0.5, 0.75, 1], "flat zero still has an axis"
    ticks = charts.value_ticks(-3, 7)
    assert ticks[0] <= -3 and ticks[-1] >= 7
