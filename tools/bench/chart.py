"""scaling.png: throughput and latency by replica count, and cost by data size, drawn with matplotlib.

Each point is a median over the rounds, its bar the min-max. The figure is drawn on
matplotlib's Agg canvas directly (no pyplot, so no global figure state and no display
needed): it works the same on the host and in the app image.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tools.bench import report as reports

BLUE = "#1f77b4"
ORANGE = "#ff7f0e"
RED = "#d62728"
GREEN = "#2ca02c"
PURPLE = "#9467bd"
GRAY = "#969696"
SMALL_BAR = "#9ecae1"
LARGE_BAR = "#08519c"

WIDTH_PX = 1650
HEIGHT_PX = 540
DPI = 100


def format_value(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


#: Where a point's value is printed: (offset in points, horizontal alignment).
VALUE_PLACES: dict[str, tuple[tuple[int, int], str]] = {
    "above": ((0, 8), "center"),
    "left": ((-8, -4), "right"),
    "right": ((8, -4), "left"),
}


def plot_stats(
    axes: Axes,
    xs: Sequence[float],
    stats: Sequence[Mapping[str, Any]],
    label: str,
    color: str,
    values: str | None = None,
    style: str = "-",
) -> None:
    """Medians as a line with a marker on each point and the min-max as error bars; with ``values``
    ("above", "left" or "right"), each median printed there."""
    ys = [s["median"] for s in stats]
    below = [s["median"] - s["min"] for s in stats]
    above = [s["max"] - s["median"] for s in stats]
    axes.errorbar(
        xs,
        ys,
        yerr=[below, above],
        color=color,
        linestyle=style,
        linewidth=2.5,
        marker="o",
        markersize=6,
        capsize=4,
        label=label,
    )
    if values:
        offset, align = VALUE_PLACES[values]
        for x, y in zip(xs, ys, strict=True):
            axes.annotate(format_value(y), (x, y), textcoords="offset points", xytext=offset, ha=align, color=color)


def style_panel(axes: Axes, title: str, y_label: str, x_label: str, counts: Sequence[int] | None = None) -> None:
    """Title, labels, the replica counts as x ticks, a y axis from 0 with room for the legend above the data."""
    axes.set_title(title, fontsize=15)
    axes.set_ylabel(y_label)
    axes.set_xlabel(x_label)
    if counts:
        axes.set_xticks(list(counts))
        axes.set_xlim(0, max(counts) + 0.5)
    axes.set_ylim(0, axes.get_ylim()[1] * 1.25)
    axes.grid(axis="y", color="#e1e1e1")
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", frameon=False)


def throughput_panel(axes: Axes, report: Mapping[str, Any]) -> list[int]:
    """Throughput vs replicas for each scenario, with the ideal N x rps(1) of the mix; the replica counts."""
    counts: list[int] = []
    for scenario, label, color in (("mix", "today's mix", BLUE), ("cached", "cached only", ORANGE)):
        runs = reports.scenario_runs(report, scenario)
        if not runs:
            continue
        counts = sorted({*counts, *runs})
        plot_stats(axes, list(runs), [run["rps"] for run in runs.values()], label, color, "above")
    mix = reports.scenario_runs(report, "mix")
    if 1 in mix and mix[1]["rps"]["median"]:
        ideal = [0, *mix]
        one = mix[1]["rps"]["median"]
        axes.plot(ideal, [n * one for n in ideal], "--", color=GRAY, linewidth=2, label="ideal: N x rps(1), mix")
    cpus = report.get("settings", {}).get("cpus")
    x_label = f"web replicas ({cpus:g} CPU each)" if cpus else "web replicas"
    style_panel(axes, "Throughput vs replicas", "requests per second", x_label, counts)
    return counts


def latency_panel(axes: Axes, report: Mapping[str, Any], counts: Sequence[int]) -> None:
    mix = reports.scenario_runs(report, "mix")
    plot_stats(axes, list(mix), [run["p99_ms"] for run in mix.values()], "p99 at saturation, mix", RED, "above")
    plot_stats(axes, list(mix), [run["p50_ms"] for run in mix.values()], "p50 at saturation, mix", PURPLE)
    cached = reports.scenario_runs(report, "cached")
    if cached:
        p99s = [run["p99_ms"] for run in cached.values()]
        plot_stats(axes, list(cached), p99s, "p99 at saturation, cached only", ORANGE, style=":")
    half = reports.fixed_rate_at(report, 0.5)
    if half is not None and half["p99_ms"] is not None:
        at = (half.get("replicas") or max(counts)) + 0.1  # beside the closed-loop points of that count
        plot_stats(axes, [at], [half["p99_ms"]], "p99 at 50% of peak (open loop)", GREEN, "right")
    style_panel(axes, "p99 latency vs replicas", "milliseconds", "web replicas", counts)


def data_size_panel(axes: Axes, report: Mapping[str, Any]) -> None:
    """Mean latency at one connection of each uncached path, small size beside large, with the ratio."""
    data_size = report.get("data_size") or {}
    paths = data_size.get("paths", [])
    small, large = data_size.get("small_articles"), data_size.get("large_articles")
    width = 0.38
    names = {"html_list": "logged-in /", "api_first": "API first page", "api_deep": "API deep page"}
    for offset, size, color, count in ((-width / 2, "small", SMALL_BAR, small), (width / 2, "large", LARGE_BAR, large)):
        measured = [(index, path[size]["mean_ms"]) for index, path in enumerate(paths) if path.get(size)]
        if not measured:
            continue
        xs = [index + offset for index, _ in measured]
        ys = [s["median"] for _, s in measured]
        errors = [[s["median"] - s["min"] for _, s in measured], [s["max"] - s["median"] for _, s in measured]]
        label = f"{reports.articles_text(count)} articles"
        axes.bar(xs, ys, width, yerr=errors, color=color, capsize=4, label=label, ecolor="#404040")
    for index, path in enumerate(paths):
        ratio = reports.size_ratio(path)
        if ratio is not None:
            top = max(path["small"]["mean_ms"]["max"], path["large"]["mean_ms"]["max"])
            axes.annotate(
                f"{ratio['median']:.2f}x", (index, top), textcoords="offset points", xytext=(0, 8), ha="center"
            )
    axes.set_xticks(range(len(paths)), [names.get(path["name"], path["name"]) for path in paths])
    if not paths:
        axes.text(0.5, 0.5, "not measured in this report", ha="center", va="center", transform=axes.transAxes)
    style_panel(axes, "Uncached reads: cost by data size", "mean ms at one connection", "request")


def render_png(report: Mapping[str, Any]) -> bytes:
    """Throughput vs replicas, p99 (and p50) vs replicas, cost by data size; the PNG's bytes."""
    report = reports.upgrade(report)
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    throughput, latency, data_size = figure.subplots(1, 3)
    counts = throughput_panel(throughput, report)
    latency_panel(latency, report, counts)
    data_size_panel(data_size, report)

    machine = report["machine"]
    repetitions = report.get("settings", {}).get("repetitions", 1)
    figure.supxlabel(
        f"{machine['cores']} cores, {machine['cpu_model']}; commit {report['commit']}; {report.get('measured_at', '')};"
        f" medians of {repetitions} round(s), bars: min-max",
        x=0.01,
        ha="left",
        fontsize=10,
        color="#787878",
    )
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})  # no version string: the same report, the same bytes
    return buffer.getvalue()
