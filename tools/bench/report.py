"""The report of `make bench`: reports/bench/scaling.json, scaling.md, scaling.png and README's section.

The report (``scaling.json``)::

    {"machine": {"cores", "cpu_model"}, "commit", "command", "measured_at", "settings": {...},
     "runs": [{"replicas", "rps", "p50_ms", "p99_ms", "errors", "cpu": {container: cores}, ...}],
     "baselines": {"nginx_static_rps", "bare_gunicorn_rps", "direct_replica_rps", "via_nginx_replica_rps"},
     "fixed_rate": [{"load", "rps", "p50_ms", "p99_ms", "p999_ms", ...}]}

CPU figures are in cores: 1.0 is one core fully busy for the whole measured interval.
Everything here works from that JSON alone (no Docker), so a report can be re-rendered
(``python -m tools.bench --render-only``) and is unit-tested in the app image.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.bench.chart import render_png

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"

#: The issue's targets: scaling efficiency, proxy efficiency, tail latency at half the peak.
TARGET_E2 = 0.90
TARGET_E4 = 0.80
TARGET_PROXY = 0.85
TARGET_P99_AT_HALF_MS = 25.0

RUN_FIELDS = ("replicas", "rps", "p50_ms", "p99_ms", "errors", "cpu")
BASELINE_FIELDS = ("nginx_static_rps", "bare_gunicorn_rps", "direct_replica_rps", "via_nginx_replica_rps")
FIXED_RATE_FIELDS = ("load", "rps", "p50_ms", "p99_ms", "p999_ms")


class ReportError(ValueError):
    """The report does not have the documented shape."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate(report: Mapping[str, Any]) -> None:
    """Raise ReportError unless ``report`` has every documented field, with numbers where numbers go."""
    problems: list[str] = []
    machine = report.get("machine")
    if not isinstance(machine, Mapping) or not isinstance(machine.get("cores"), int) or "cpu_model" not in machine:
        problems.append("machine must have cores (int) and cpu_model")
    for name in ("commit", "command"):
        if not isinstance(report.get(name), str) or not report.get(name):
            problems.append(f"{name} must be a non-empty string")
    runs = report.get("runs")
    if not isinstance(runs, list) or not runs:
        problems.append("runs must be a non-empty list")
        runs = []
    for index, run in enumerate(runs):
        missing = [f for f in RUN_FIELDS if f not in run]
        if missing:
            problems.append(f"runs[{index}] lacks {', '.join(missing)}")
            continue
        if not isinstance(run["replicas"], int) or run["replicas"] < 1:
            problems.append(f"runs[{index}].replicas must be a positive integer")
        for name in ("rps", "p50_ms", "p99_ms"):
            if not _number(run[name]):
                problems.append(f"runs[{index}].{name} must be a number")
        if not isinstance(run["errors"], int) or run["errors"] < 0:
            problems.append(f"runs[{index}].errors must be a count")
        if not isinstance(run["cpu"], Mapping) or not all(_number(v) for v in run["cpu"].values()):
            problems.append(f"runs[{index}].cpu must map containers to cores")
    if len({run.get("replicas") for run in runs}) != len(runs):
        problems.append("runs must have one entry per replica count")
    baselines = report.get("baselines")
    if not isinstance(baselines, Mapping):
        problems.append("baselines must be an object")
    else:
        for name in BASELINE_FIELDS:
            if not _number(baselines.get(name)):
                problems.append(f"baselines.{name} must be a number")
    fixed = report.get("fixed_rate")
    if not isinstance(fixed, list):
        problems.append("fixed_rate must be a list")
        fixed = []
    for index, entry in enumerate(fixed):
        for name in FIXED_RATE_FIELDS:
            if not _number(entry.get(name)):
                problems.append(f"fixed_rate[{index}].{name} must be a number")
    if problems:
        raise ReportError("; ".join(problems))


# --- derived figures ------------------------------------------------------------------------


def runs_by_replicas(report: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    return {run["replicas"]: run for run in sorted(report["runs"], key=lambda r: r["replicas"])}


def efficiency(report: Mapping[str, Any]) -> dict[int, float | None]:
    """E(N) = rps(N) / (N x rps(1)); None for every N when there is no single-replica run."""
    runs = runs_by_replicas(report)
    base = runs.get(1, {}).get("rps")
    return {n: (run["rps"] / (n * base) if base else None) for n, run in runs.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def proxy_efficiency(report: Mapping[str, Any]) -> float | None:
    baselines = report["baselines"]
    return ratio(baselines.get("via_nginx_replica_rps"), baselines.get("direct_replica_rps"))


def fixed_rate_at(report: Mapping[str, Any], load: float) -> Mapping[str, Any] | None:
    for entry in report.get("fixed_rate", []):
        if abs(entry["load"] - load) < 1e-9:
            return entry
    return None


def targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: what it asks, the measured value, and whether it is met (None: not measured)."""
    e = efficiency(report)
    half = fixed_rate_at(report, 0.5)
    total_errors = sum(run["errors"] for run in report["runs"]) + sum(
        entry.get("errors", 0) for entry in report.get("fixed_rate", [])
    )

    def at_least(value: float | None, bound: float) -> bool | None:
        return None if value is None else value >= bound

    rows = [
        {"target": f"E(2) >= {TARGET_E2:.2f}", "value": e.get(2), "met": at_least(e.get(2), TARGET_E2)},
        {"target": f"E(4) >= {TARGET_E4:.2f}", "value": e.get(4), "met": at_least(e.get(4), TARGET_E4)},
        {
            "target": f"proxy efficiency (via nginx / direct, 1 replica) >= {TARGET_PROXY:.2f}",
            "value": proxy_efficiency(report),
            "met": at_least(proxy_efficiency(report), TARGET_PROXY),
        },
        {
            "target": f"p99 at 50% of peak <= {TARGET_P99_AT_HALF_MS:g} ms",
            "value": half["p99_ms"] if half else None,
            "met": None if half is None else half["p99_ms"] <= TARGET_P99_AT_HALF_MS,
        },
        {"target": "0 errors in every run", "value": total_errors, "met": total_errors == 0},
    ]
    return rows


# --- markdown ---------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def web_cores(run: Mapping[str, Any]) -> float:
    return sum(cores for name, cores in run["cpu"].items() if re.fullmatch(r"web-\d+", name))


def describe_setup(report: Mapping[str, Any]) -> str:
    machine = report["machine"]
    settings = report.get("settings", {})
    when = report.get("measured_at", "")
    parts = [f"Measured {when} on {machine['cores']} cores ({machine['cpu_model']}), commit `{report['commit']}`,"]
    parts.append(f"with `{report['command']}`.")
    if settings:
        parts.append(
            f"Each web replica is limited to {settings.get('cpus', '?')} CPU"
            f" ({settings.get('gunicorn_workers', '?')} gevent worker(s), worker recycling"
            f" {'off' if str(settings.get('gunicorn_max_requests', '')) == '0' else 'on'});"
            f" the same share limits the bare-gunicorn baseline. Load: {settings.get('generator', 'wrk')},"
            f" {settings.get('connections_per_replica', '?')} connections per replica,"
            f" {settings.get('duration_s', '?')} s after a {settings.get('warmup_s', '?')} s warm-up, inside the"
            f" compose network. Mix: {settings.get('mix', '?')}."
        )
    return " ".join(parts)


def render_markdown(
    report: Mapping[str, Any], image: str | None = "scaling.png", heading: str = "#", cpu_table: bool = True
) -> str:
    """The report as Markdown: setup, scaling table, baselines, fixed-rate latency, targets, CPU by container."""
    e = efficiency(report)
    baselines = report["baselines"]
    bare = baselines.get("bare_gunicorn_rps")
    out = [f"{heading} Newsdesk scaling benchmark", "", describe_setup(report), ""]

    rows = []
    for n, run in runs_by_replicas(report).items():
        throttled = run.get("throttled", {})
        web_throttle = [v for k, v in throttled.items() if re.fullmatch(r"web-\d+", k)]
        rows.append(
            [
                str(n),
                fmt(float(run["rps"])),
                fmt(e.get(n), 2),
                pct(ratio(run["rps"], n * bare if bare else None)),
                fmt(float(run["p50_ms"]), 1),
                fmt(float(run["p99_ms"]), 1),
                fmt(run["errors"]),
                fmt(web_cores(run), 2),
                pct(sum(web_throttle) / len(web_throttle)) if web_throttle else "-",
                fmt(run.get("host_cpu", {}).get("busy_cores"), 2),
            ]
        )
    out += [
        f"{heading}# Throughput by replica count (saturating closed-loop load through nginx)",
        "",
        table(
            [
                "replicas",
                "req/s",
                "E(N)",
                "of bare gunicorn x N",
                "p50 ms",
                "p99 ms",
                "errors",
                "web CPU (cores)",
                "web periods throttled",
                "host CPU busy (cores)",
            ],
            rows,
        ),
        "",
        "E(N) = rps(N) / (N x rps(1)). *Of bare gunicorn x N*: the share of what N hello-world gunicorn workers"
        " with the same CPU share answer, i.e. of the physical limit for Python at that share.",
        "",
    ]

    static = baselines.get("nginx_static_rps")
    direct = baselines.get("direct_replica_rps")
    via = baselines.get("via_nginx_replica_rps")
    out += [
        f"{heading}# Baselines",
        "",
        table(
            ["baseline", "req/s", "ratio"],
            [
                ["nginx answering a static body (`/bench/static`)", fmt(static and float(static)), "-"],
                [
                    "bare gunicorn: one gevent worker, hello-world JSON, same CPU share",
                    fmt(bare and float(bare)),
                    f"1 replica reaches {pct(ratio(via, bare))} of it",
                ],
                ["one replica hit directly (no nginx)", fmt(direct and float(direct)), "-"],
                [
                    "the same replica through nginx",
                    fmt(via and float(via)),
                    f"proxy efficiency {fmt(proxy_efficiency(report), 2)}",
                ],
            ],
            "lrl",
        ),
        "",
    ]

    fixed = sorted(report.get("fixed_rate", []), key=lambda entry: entry["load"])
    if fixed:
        replicas = fixed[0].get("replicas")
        out += [
            f"{heading}# Latency at a fixed rate (open loop, measured from each request's scheduled time)",
            "",
            (f"{replicas} replicas; " if replicas else "")
            + "peak = the highest throughput above; loadtest/openloop.py schedules requests on a fixed clock,"
            " so a stalled server cannot slow the clock that measures it (no coordinated omission).",
            "",
            table(
                ["load", "target req/s", "achieved req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"],
                [
                    [
                        pct(entry["load"]),
                        fmt(entry.get("target_rps") and float(entry["target_rps"])),
                        fmt(float(entry["rps"])),
                        fmt(float(entry["p50_ms"]), 1),
                        fmt(float(entry["p99_ms"]), 1),
                        fmt(float(entry["p999_ms"]), 1),
                        fmt(entry.get("errors")),
                    ]
                    for entry in fixed
                ],
            ),
            "",
        ]

    out += [
        f"{heading}# Targets",
        "",
        table(
            ["target", "measured", "met"],
            [
                [
                    row["target"],
                    fmt(row["value"], 2) if isinstance(row["value"], float) else fmt(row["value"]),
                    "not measured" if row["met"] is None else fmt(row["met"]),
                ]
                for row in targets(report)
            ],
            "lrl",
        ),
        "",
    ]

    containers = sorted({name for run in report["runs"] for name in run["cpu"]}, key=container_order)
    if containers and cpu_table:
        ordered = list(runs_by_replicas(report).values())
        out += [
            f"{heading}# CPU by container during each run (cores)",
            "",
            table(
                ["container", *[f"{run['replicas']} replica{'s' if run['replicas'] > 1 else ''}" for run in ordered]],
                [[name, *[fmt(run["cpu"].get(name), 2) for run in ordered]] for name in containers],
            ),
            "",
        ]
    if image:
        out += [f"![throughput and p99 by replica count]({image})", ""]
    return "\n".join(out)


def container_order(name: str) -> tuple[int, str]:
    order = ("web", "nginx", "db-replica", "db", "cache", "redis", "bench-client", "bench-hello")
    for index, prefix in enumerate(order):
        if re.fullmatch(rf"{re.escape(prefix)}-\d+", name):
            return index, name
    return len(order), name


# --- files ------------------------------------------------------------------------------------


def readme_section(report: Mapping[str, Any], image_path: str) -> str:
    """The README's Performance figures from the latest run: the tables (not the CPU by container) and the plot."""
    body = render_markdown(report, image=image_path, heading="##", cpu_table=False)
    body = body.split("\n", 1)[1].lstrip("\n")  # the section has its own heading
    return f"{README_START}\n{body.rstrip()}\n{README_END}"


def update_readme(readme: Path, report: Mapping[str, Any], image_path: str = "reports/bench/scaling.png") -> bool:
    """Replace what lies between the bench markers of ``readme``; False (untouched) without markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    updated = text[:start] + readme_section(report, image_path) + text[end + len(README_END) :]
    if updated != text:
        readme.write_text(updated, encoding="utf-8")
    return True


def write_reports(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Validate, then write scaling.json, scaling.md and scaling.png into ``out_dir``."""
    validate(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "scaling.json", "md": out_dir / "scaling.md", "png": out_dir / "scaling.png"}
    paths["json"].write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(report, image="scaling.png"), encoding="utf-8")
    paths["png"].write_bytes(render_png(report))
    return paths
