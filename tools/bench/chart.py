"""scaling.png: throughput and latency by replica count, drawn with matplotlib.

The figure is drawn on matplotlib's Agg canvas directly (no pyplot, so no global figure
state and no display needed): it works the same on the host and in the app image.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BLUE = "#1f77b4"
RED = "#d62728"
GREEN = "#2ca02c"
PURPLE = "#9467bd"
GRAY = "#969696"

WIDTH_PX = 1200
HEIGHT_PX = 540
DPI = 100


def format_value(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


#: Where a point's value is printed: (offset in points, horizontal alignment).
VALUE_PLACES: dict[str, tuple[tuple[int, int], str]] = {"above": ((0, 8), "center"), "left": ((-8, -4), "right")}


def plot_series(
    axes: Axes, xs: Sequence[float], ys: Sequence[float], label: str, color: str, values: str | None = None
) -> None:
    """A line with a marker on each point; with ``values`` ("above" or "left"), each point's value printed there."""
    axes.plot(xs, ys, color=color, linewidth=2.5, marker="o", markersize=6, label=label)
    if values:
        offset, align = VALUE_PLACES[values]
        for x, y in zip(xs, ys, strict=True):
            axes.annotate(format_value(y), (x, y), textcoords="offset points", xytext=offset, ha=align, color=color)


def style_panel(axes: Axes, title: str, y_label: str, x_label: str, counts: Sequence[int]) -> None:
    """Title, labels, the replica counts as x ticks, a y axis from 0 with room for the legend above the data."""
    axes.set_title(title, fontsize=15)
    axes.set_ylabel(y_label)
    axes.set_xlabel(x_label)
    axes.set_xticks(list(counts))
    axes.set_xlim(0, max(counts) + 0.5)
    axes.set_ylim(0, axes.get_ylim()[1] * 1.25)
    axes.grid(axis="y", color="#e1e1e1")
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="upper left", frameon=False)


def render_png(report: Mapping[str, Any]) -> bytes:
    """Throughput vs replicas with the ideal line, and p99 (and p50) vs replicas; the PNG's bytes."""
    runs = sorted(report["runs"], key=lambda run: run["replicas"])
    counts = [run["replicas"] for run in runs]
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    throughput, latency = figure.subplots(1, 2)

    plot_series(throughput, counts, [run["rps"] for run in runs], "measured", BLUE, "above")
    if counts[0] == 1 and runs[0]["rps"]:
        ideal = [0, *counts]
        throughput.plot(
            ideal, [n * runs[0]["rps"] for n in ideal], "--", color=GRAY, linewidth=2, label="ideal: N x rps(1)"
        )
    cpus = report.get("settings", {}).get("cpus")
    x_label = f"web replicas ({cpus:g} CPU each)" if cpus else "web replicas"
    style_panel(throughput, "Throughput vs replicas", "requests per second", x_label, counts)

    plot_series(latency, counts, [run["p99_ms"] for run in runs], "p99 at saturation", RED, "above")
    plot_series(latency, counts, [run["p50_ms"] for run in runs], "p50 at saturation", PURPLE)
    half = next((entry for entry in report.get("fixed_rate", []) if abs(entry["load"] - 0.5) < 1e-9), None)
    if half is not None:
        at = half.get("replicas") or max(counts)
        plot_series(latency, [at], [half["p99_ms"]], "p99 at 50% of peak (open loop)", GREEN, "left")
    style_panel(latency, "p99 latency vs replicas", "milliseconds", "web replicas", counts)

    machine = report["machine"]
    figure.supxlabel(
        f"{machine['cores']} cores, {machine['cpu_model']}; commit {report['commit']}; {report.get('measured_at', '')}",
        x=0.01,
        ha="left",
        fontsize=10,
        color="#787878",
    )
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})  # no version string: the same report, the same bytes
    return buffer.getvalue()
