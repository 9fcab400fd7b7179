"""The report written out: scaling.md, README's section between the bench markers, and the files
(scaling.json as measured, scaling.md, scaling.png). Every figure measured in rounds is shown
as its median with the min-max over the rounds in brackets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.bench import report as reports
from tools.bench.chart import render_png
from tools.bench.stats import Stat

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


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


def stat(value: Stat | None, digits: int = 0, scale: float = 1.0, suffix: str = "") -> str:
    """``median (min-max)``; just the median when the rounds agree or there was one."""
    if value is None:
        return "-"
    low, mid, high = (value[k] * scale for k in ("min", "median", "max"))
    text = f"{mid:,.{digits}f}{suffix}"
    spread = f"{low:,.{digits}f}-{high:,.{digits}f}{suffix}"
    return text if f"{low:,.{digits}f}" == f"{high:,.{digits}f}" else f"{text} ({spread})"


def pct(value: Stat | None) -> str:
    return stat(value, 0, 100, "%")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def errors_text(entry: Mapping[str, Any], prefix: str = "") -> str:
    """A run's error count, with the error responses by status where they were counted: ``16 (503: 12, 500: 4)``."""
    counts = entry.get(f"{prefix}error_statuses") or {}
    detail = ", ".join(f"{code}: {n:,}" for code, n in sorted(counts.items()))
    return fmt(entry.get(f"{prefix}errors")) + (f" ({detail})" if detail else "")


def is_web(name: str) -> bool:
    return re.fullmatch(r"web-\d+", name) is not None


def web_cores(run: Mapping[str, Any]) -> float:
    return sum(cores for name, cores in run["cpu"].items() if is_web(name))


def describe_setup(report: Mapping[str, Any]) -> str:
    machine = report["machine"]
    settings = report.get("settings", {})
    parts = [
        f"Measured {report.get('measured_at', '')} on {machine['cores']} cores ({machine['cpu_model']}),"
        f" commit `{report['commit']}`, with `{report['command']}`."
    ]
    repetitions = settings.get("repetitions", 1)
    if repetitions > 1:
        parts.append(
            f"Each figure is the median of {repetitions} repetitions, with the min-max in brackets; the"
            " repetitions are interleaved (each round measures every configuration once, the next round"
            " in the reverse order), and ratios are taken median over median, with their spread round by round."
        )
    else:
        parts.append("Each figure was measured once.")
    if settings:
        period = settings.get("cpu_period_us")
        share = f"{settings.get('cpus', '?')} CPU"
        if period:
            share += (
                f" as a CFS quota of {settings.get('cpu_quota_us', 0) / 1000:g} ms per {period / 1000:g} ms period"
                " (Docker's `cpus` would use a 100 ms period, in which a burst freezes the replica for up to"
                f" {100 * (1 - settings.get('cpus', 0)):g} ms)"
            )
        else:
            share += " (compose's `cpus`: Docker's 100 ms CFS period)"
        probe = ""
        if settings.get("web_docker_healthcheck") is False:
            probe = ", no Docker healthcheck (runc charges each probe's exec to the replica, ~28 ms of CPU)"
        if settings.get("dependency_healthcheck_interval_s"):
            probe += (
                f", the dependencies' probes every {settings['dependency_healthcheck_interval_s']} s instead of"
                " 3-5 s (each costs the host ~0.1 s of CPU; together every 3 s they stalled all replicas)"
            )
        parts.append(
            f"Each web replica gets {share}, {settings.get('gunicorn_workers', '?')} gevent worker(s), worker"
            f" recycling {'off' if str(settings.get('gunicorn_max_requests', '')) == '0' else 'on'}{probe}; the same"
            f" share limits the bare-gunicorn baseline. Load: {settings.get('generator', 'wrk')},"
            f" {settings.get('connections_per_replica', '?')} connections per replica,"
            f" {settings.get('duration_s', '?')} s after a {settings.get('warmup_s', '?')} s warm-up,"
            " inside the compose network."
            f" Today's mix: {settings.get('mix', '?')}."
            + (f" Cached only: {settings['cached_mix']}." if settings.get("cached_mix") else "")
            + (
                f" Data set: {settings['articles']:,} seeded articles, then {settings['large_articles']:,}"
                " for the large data size."
                if settings.get("articles") and settings.get("large_articles")
                else (f" Data set: {settings['articles']:,} seeded articles." if settings.get("articles") else "")
            )
        )
    return " ".join(parts)


def target_value(row: Mapping[str, Any]) -> str:
    value, unit = row["value"], row.get("unit")
    if isinstance(value, Mapping):
        if unit == "%":
            return pct(value)
        if unit == "ms":
            return stat(value, 1, suffix=" ms")
        return stat(value, 2, suffix="x" if unit == "x" else "")
    return fmt(value)


def targets_section(report: Mapping[str, Any], heading: str) -> list[str]:
    rows = [
        [row["target"], target_value(row), "not measured" if row["met"] is None else fmt(row["met"])]
        for row in reports.targets(report)
    ]
    return [
        f"{heading}# Targets (judged on the medians)",
        "",
        table(["target", "measured", "met"], rows, "lrl"),
        "",
    ]


def scaling_section(report: Mapping[str, Any], scenario: str, heading: str) -> list[str]:
    runs = reports.scenario_runs(report, scenario)
    if not runs:
        return []
    e = reports.efficiency(report, scenario)
    settings = report.get("settings", {})
    what = settings.get("mix" if scenario == "mix" else "cached_mix", "")
    rows = []
    for n, run in runs.items():
        throttled = [v for k, v in run.get("throttled", {}).items() if is_web(k)]
        rows.append(
            [
                str(n),
                stat(run["rps"]),
                stat(e.get(n), 2),
                pct(reports.of_bare(report, scenario, n)),
                stat(run["p50_ms"], 1),
                stat(run["p99_ms"], 1),
                errors_text(run),
                fmt(web_cores(run), 2),
                f"{100 * sum(throttled) / len(throttled):.0f}%" if throttled else "-",
                stat(run.get("host_busy_cores"), 2),
            ]
        )
    title = reports.SCENARIO_NAMES[scenario].capitalize()
    return [
        f"{heading}# {title}: throughput by replica count (saturating closed loop through nginx)",
        "",
        *([f"{what}.", ""] if what else []),
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
    ]


def baselines_section(report: Mapping[str, Any], heading: str) -> list[str]:
    baselines = report["baselines"]
    via, direct = reports.via_nginx(report), baselines.get("direct_replica_rps")
    return [
        f"{heading}# Baselines",
        "",
        table(
            ["baseline", "req/s", "ratio"],
            [
                ["nginx answering a static body (`/bench/static`)", stat(baselines.get("nginx_static_rps")), "-"],
                [
                    "bare gunicorn: one gevent worker, hello-world JSON, same CPU share",
                    stat(baselines.get("bare_gunicorn_rps")),
                    f"1 replica reaches {pct(reports.of_bare(report))} of it on the mix",
                ],
                ["one replica hit directly (no nginx), the mix", stat(direct), "-"],
                [
                    "the same replica through nginx",
                    stat(via),
                    f"proxy efficiency {stat(reports.proxy_efficiency(report), 2)}",
                ],
            ],
            "lrl",
        ),
        "",
    ]


def fixed_rate_section(report: Mapping[str, Any], heading: str) -> list[str]:
    fixed = sorted(report.get("fixed_rate", []), key=lambda entry: (reports.scenario_of(entry) != "mix", entry["load"]))
    if not fixed:
        return []
    replicas = fixed[0].get("replicas")
    cached = any(reports.scenario_of(entry) == "cached" for entry in fixed)
    return [
        f"{heading}# Latency at a fixed rate (open loop, measured from each request's scheduled time)",
        "",
        (f"{replicas} replicas; " if replicas else "")
        + "peak = the highest median throughput above; loadtest/openloop.py schedules requests on a fixed clock,"
        " so a stalled server cannot slow the clock that measures it (no coordinated omission)."
        + (
            " The cached-only row runs at the mix's lowest rate without the uncached reads: the difference is"
            " the tail those reads make (each keeps its replica's CPU for milliseconds at its share)."
            if cached
            else ""
        ),
        "",
        table(
            ["requests", "load", "target req/s", "achieved req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"],
            [
                [
                    reports.SCENARIO_NAMES[reports.scenario_of(entry)],
                    f"{entry['load'] * 100:.0f}%",
                    fmt(entry.get("target_rps") and float(entry["target_rps"])),
                    stat(entry["rps"]),
                    stat(entry["p50_ms"], 1),
                    stat(entry["p99_ms"], 1),
                    stat(entry["p999_ms"], 1),
                    fmt(entry.get("errors")),
                ]
                for entry in fixed
            ],
        ),
        "",
    ]


def read_write_section(report: Mapping[str, Any], heading: str) -> list[str]:
    rw = report.get("read_write")
    if not rw:
        return []
    counts = rw.get("x_cache", {})
    counted = ", ".join(f"{value} {count:,}" for value, count in counts.items()) or "none"
    return [
        f"{heading}# Reads with one write a second",
        "",
        f"{rw['replicas']} replicas saturated by today's mix (closed loop) while one API key publishes"
        f" {rw['write_rate']:g} article(s) a second (`POST /api/v1/articles`, open loop) and a probe without"
        f" cookies asks for the home page `/` {rw['probe_rate']:g} times a second, counting its `X-Cache` header"
        " (`hit`: the process's memory, `shared`: the shared Redis cache, `miss`: rendered). Worker and beat run"
        " for this run only (the written articles' processing, the outbox relay).",
        "",
        table(
            [
                "reads req/s",
                "reads p99 ms",
                "read errors",
                "writes/s",
                "write p99 ms",
                "write errors",
                "home page hit ratio",
                "X-Cache counts",
                "probe errors",
            ],
            [
                [
                    stat(rw["rps"]),
                    stat(rw["p99_ms"], 1),
                    errors_text(rw),
                    stat(rw.get("writes_per_s"), 2),
                    stat(rw.get("write_p99_ms"), 1),
                    errors_text(rw, "write_"),
                    pct(rw.get("hit_ratio")) if rw.get("hit_ratio") else "not measured (no X-Cache)",
                    counted,
                    errors_text(rw, "probe_"),
                ]
            ],
            "rrrrrrrlr",
        ),
        "",
    ]


def data_size_section(report: Mapping[str, Any], heading: str) -> list[str]:
    data_size = report.get("data_size")
    if not data_size:
        return []
    small, large = data_size.get("small_articles"), data_size.get("large_articles")
    small_text, large_text = reports.articles_text(small), reports.articles_text(large)
    rows = []
    for path in data_size["paths"]:
        at_small, at_large = path.get("small") or {}, path.get("large") or {}
        request = at_small.get("request", "")
        if path["name"] == "api_deep":
            request = (
                f"{fmt(at_small.get('rows_before'))} rows deep at {small_text},"
                f" {fmt(at_large.get('rows_before'))} at {large_text}"
                + (
                    " (by page number: no cursor)"
                    if at_large.get("reached_by", at_small.get("reached_by")) == "page"
                    else ""
                )
            )
        rows.append(
            [
                path["label"],
                request.replace("|", "\\|"),
                stat(at_small.get("mean_ms"), 1),
                stat(at_large.get("mean_ms"), 1),
                stat(reports.size_ratio(path), 2, suffix="x"),
                stat(at_small.get("p99_ms"), 1),
                stat(at_large.get("p99_ms"), 1),
                " / ".join(errors_text(entry) for entry in (at_small, at_large) if entry),
            ]
        )
    out = [
        f"{heading}# Cost as the data grows: the uncached read path at {small_text} and {large_text} articles",
        "",
        f"Cost = {data_size.get('cost', 'mean latency at one connection')}.",
        "",
        table(
            [
                "request",
                "what",
                f"mean ms at {small_text}",
                f"mean ms at {large_text}",
                "ratio",
                f"p99 ms at {small_text}",
                f"p99 ms at {large_text}",
                "errors (each size)",
            ],
            rows,
            "llrrrrrr",
        ),
        "",
    ]
    seeding = data_size.get("seeding")
    if seeding:
        out += [
            f"The large size: {seeding['articles_added']:,} articles added"
            f" {'with `flask seed --bulk`' if seeding.get('bulk') else 'with `flask seed` (no --bulk)'} in"
            f" {seeding['seed_s']:g} s, then `VACUUM (ANALYZE)` and the replica's replay: measured"
            f" {seeding['ready_s']:g} s after the seeding began.",
            "",
        ]
    if data_size.get("large_error"):
        out += [f"The large size was not measured: {data_size['large_error'].splitlines()[0]}", ""]
    return out


def cpu_section(report: Mapping[str, Any], heading: str) -> list[str]:
    ordered = list(reports.scenario_runs(report, "mix").values())
    containers = sorted({name for run in ordered for name in run["cpu"]}, key=container_order)
    if not containers:
        return []
    return [
        f"{heading}# CPU by container during today's mix (cores, median over the rounds)",
        "",
        table(
            ["container", *[f"{run['replicas']} replica{'s' if run['replicas'] > 1 else ''}" for run in ordered]],
            [[name, *[fmt(run["cpu"].get(name), 2) for run in ordered]] for name in containers],
        ),
        "",
    ]


def render_markdown(
    report: Mapping[str, Any], image: str | None = "scaling.png", heading: str = "#", cpu_table: bool = True
) -> str:
    """The report as Markdown: setup, targets, both scaling tables, baselines, fixed-rate latency,
    reads with writes, cost by data size, CPU by container."""
    report = reports.upgrade(report)
    e_note = (
        "E(N) = rps(N) / (N x rps(1)). *Of bare gunicorn x N*: the share of what N hello-world gunicorn"
        " workers with the same CPU share answer, i.e. of the physical limit for Python at that share."
    )
    out = [f"{heading} Newsdesk benchmark", "", describe_setup(report), ""]
    out += targets_section(report, heading)
    out += scaling_section(report, "mix", heading)
    out += scaling_section(report, "cached", heading)
    out += [e_note, ""]
    out += baselines_section(report, heading)
    out += fixed_rate_section(report, heading)
    out += read_write_section(report, heading)
    out += data_size_section(report, heading)
    if cpu_table:
        out += cpu_section(report, heading)
    if image:
        out += [f"![throughput, p99 and cost by data size]({image})", ""]
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
    """Validate, then write scaling.json (as given), scaling.md and scaling.png into ``out_dir``."""
    current = reports.upgrade(report)
    reports.validate(current)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "scaling.json", "md": out_dir / "scaling.md", "png": out_dir / "scaling.png"}
    paths["json"].write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(current, image="scaling.png"), encoding="utf-8")
    paths["png"].write_bytes(render_png(current))
    return paths


def missed(report: Mapping[str, Any]) -> list[str]:
    """The targets that were measured and missed."""
    return [row["target"] for row in reports.targets(reports.upgrade(report)) if row["met"] is False]
