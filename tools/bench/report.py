"""The report of `make bench` (reports/bench/scaling.json): its shape, the figures derived from it,
and the issue's targets. tools/bench/render.py writes it out as Markdown, README's section and
the chart; everything here works from the JSON alone (no Docker), so a report can be re-rendered
(``python -m tools.bench --render-only``) and is unit-tested in the app image.

A figure measured once per round is a *stat* (tools/bench/stats.py): ``{"median", "min", "max",
"values"}``. The report (``"schema": 2``)::

    {"schema": 2, "machine": {"cores", "cpu_model"}, "commit", "command", "measured_at", "settings": {...},
     "scaling": {"mix": [run], "cached": [run]},
         run = {"replicas", "connections", "rps": stat, "p50_ms": stat, "p99_ms": stat, "p999_ms": stat,
                "errors", "error_kinds", "cpu": {container: median cores}, "throttled": {...}, "host_busy_cores": stat}
     "baselines": {"nginx_static_rps": stat, "bare_gunicorn_rps": stat, "direct_replica_rps": stat | null},
     "fixed_rate": [{"scenario" ("mix" or "cached"; absent: "mix"), "load", "replicas", "target_rps",
                     "rps": stat, "p50_ms": stat, "p99_ms": stat, "p999_ms": stat, "errors", ...}],
     "read_write": null | run + {"write_rate", "probe_rate", "writes_per_s": stat, "write_errors",
                                 "hit_ratio": stat | null, "x_cache": {value: count}, ...},
     "data_size": null | {"cost", "small_articles", "large_articles", "large_error"?, "seeding"?,
                          "paths": [{"name", "label", "small": path, "large": path | null}]},
         path = {"request", "mean_ms": stat, "p50_ms": stat, "p99_ms": stat, "errors", ...}}

A report from before repetitions (no ``schema``: ``runs``, plain numbers) is read as one round
of the mix (``upgrade``), so --render-only still draws the reports of older commits.
CPU figures are in cores: 1.0 is one core fully busy for the whole measured interval.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from tools.bench.stats import Stat, is_stat, median, ratio, scaled, summarise

SCHEMA = 2
SCENARIOS = ("mix", "cached")
#: What each scenario is called in the report and the run's messages.
SCENARIO_NAMES = {"mix": "today's mix", "cached": "cached only"}

#: The issue's targets, judged on medians.
TARGET_CACHED_OF_BARE = 0.40
TARGET_MIX_OF_BARE = 0.30
TARGET_E2 = 0.95
TARGET_E4 = 0.90
TARGET_P99_AT_HALF_MS = 25.0
TARGET_DATA_RATIO = 1.5
TARGET_HIT_RATIO = 0.90

RUN_STATS = ("rps", "p50_ms", "p99_ms")
FIXED_RATE_STATS = ("rps", "p50_ms", "p99_ms", "p999_ms")
PATH_STATS = ("mean_ms", "p50_ms", "p99_ms")


class ReportError(ValueError):
    """The report does not have the documented shape."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- reports from before repetitions ----------------------------------------------------------


def _one_round(value: Any) -> Stat | None:
    return summarise([value]) if _number(value) else None


def upgrade(report: Mapping[str, Any]) -> dict[str, Any]:
    """``report`` in the current shape: a copy of a legacy report (one round of the mix, plain numbers
    made stats of one value, no cached-only, read/write or data-size runs), or the report itself."""
    if report.get("schema") == SCHEMA or "runs" not in report:
        return dict(report)
    legacy = copy.deepcopy(dict(report))
    runs = legacy.pop("runs")
    for run in runs:
        for name in ("rps", "p50_ms", "p99_ms", "p999_ms"):
            if name in run:
                run[name] = _one_round(run[name])
        busy = run.pop("host_cpu", {}).get("busy_cores")
        run["host_busy_cores"] = _one_round(busy)
    baselines = legacy.get("baselines", {})
    legacy["baselines"] = {name: _one_round(value) for name, value in baselines.items()}
    for entry in legacy.get("fixed_rate", []):
        for name in (*FIXED_RATE_STATS, "generator_lag_p99_ms"):
            if name in entry:
                entry[name] = _one_round(entry[name])
    legacy["settings"] = {**legacy.get("settings", {}), "repetitions": 1}
    return {
        **legacy,
        "schema": SCHEMA,
        "upgraded_from": 1,
        "scaling": {"mix": runs, "cached": []},
        "read_write": None,
        "data_size": None,
    }


# --- validation -------------------------------------------------------------------------------


def _check_stats(entry: Mapping[str, Any], names: tuple[str, ...], where: str, problems: list[str]) -> None:
    for name in names:
        if not is_stat(entry.get(name)):
            problems.append(f"{where}.{name} must be a stat (median, min, max, values)")


def _check_run(run: Any, where: str, problems: list[str]) -> None:
    if not isinstance(run, Mapping):
        problems.append(f"{where} must be an object")
        return
    missing = [f for f in ("replicas", *RUN_STATS, "errors", "cpu") if f not in run]
    if missing:
        problems.append(f"{where} lacks {', '.join(missing)}")
        return
    if not isinstance(run["replicas"], int) or run["replicas"] < 1:
        problems.append(f"{where}.replicas must be a positive integer")
    _check_stats(run, RUN_STATS, where, problems)
    if not _count(run["errors"]):
        problems.append(f"{where}.errors must be a count")
    if not isinstance(run["cpu"], Mapping) or not all(_number(v) for v in run["cpu"].values()):
        problems.append(f"{where}.cpu must map containers to cores")


def validate(report: Mapping[str, Any]) -> None:
    """Raise ReportError unless ``report`` (current shape) has every documented field, with numbers
    where numbers go and stats where rounds were measured."""
    problems: list[str] = []
    if report.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA} (upgrade() reads older reports)")
    machine = report.get("machine")
    if not isinstance(machine, Mapping) or not isinstance(machine.get("cores"), int) or "cpu_model" not in machine:
        problems.append("machine must have cores (int) and cpu_model")
    for name in ("commit", "command"):
        if not isinstance(report.get(name), str) or not report.get(name):
            problems.append(f"{name} must be a non-empty string")

    scaling = report.get("scaling")
    if not isinstance(scaling, Mapping) or not isinstance(scaling.get("mix"), list) or not scaling["mix"]:
        problems.append("scaling.mix must be a non-empty list")
        scaling = {}
    for scenario in SCENARIOS:
        runs = scaling.get(scenario, [])
        if not isinstance(runs, list):
            problems.append(f"scaling.{scenario} must be a list")
            continue
        for index, run in enumerate(runs):
            _check_run(run, f"scaling.{scenario}[{index}]", problems)
        if len({run.get("replicas") for run in runs if isinstance(run, Mapping)}) != len(runs):
            problems.append(f"scaling.{scenario} must have one entry per replica count")

    baselines = report.get("baselines")
    if not isinstance(baselines, Mapping):
        problems.append("baselines must be an object")
    else:
        _check_stats(baselines, ("nginx_static_rps", "bare_gunicorn_rps"), "baselines", problems)
        for name in ("direct_replica_rps", "via_nginx_replica_rps"):
            if baselines.get(name) is not None and not is_stat(baselines[name]):
                problems.append(f"baselines.{name} must be a stat or null")

    fixed = report.get("fixed_rate")
    if not isinstance(fixed, list):
        problems.append("fixed_rate must be a list")
        fixed = []
    for index, entry in enumerate(fixed):
        if not _number(entry.get("load")):
            problems.append(f"fixed_rate[{index}].load must be a number")
        _check_stats(entry, ("rps",), f"fixed_rate[{index}]", problems)
        for name in FIXED_RATE_STATS[1:]:  # null when no request of any round was answered
            if entry.get(name) is not None and not is_stat(entry[name]):
                problems.append(f"fixed_rate[{index}].{name} must be a stat or null")

    read_write = report.get("read_write")
    if read_write is not None:
        _check_run(read_write, "read_write", problems)
        if isinstance(read_write, Mapping):
            if read_write.get("hit_ratio") is not None and not is_stat(read_write["hit_ratio"]):
                problems.append("read_write.hit_ratio must be a stat or null")
            if not isinstance(read_write.get("x_cache"), Mapping):
                problems.append("read_write.x_cache must map X-Cache values to counts")
            if not _count(read_write.get("write_errors")):
                problems.append("read_write.write_errors must be a count")

    data_size = report.get("data_size")
    if data_size is not None:
        paths = data_size.get("paths") if isinstance(data_size, Mapping) else None
        if not isinstance(paths, list):
            problems.append("data_size.paths must be a list")
            paths = []
        for index, path in enumerate(paths):
            for size in ("small", "large"):
                entry = path.get(size)
                if entry is None:
                    continue
                _check_stats(entry, PATH_STATS, f"data_size.paths[{index}].{size}", problems)
                if not _count(entry.get("errors")):
                    problems.append(f"data_size.paths[{index}].{size}.errors must be a count")
    if problems:
        raise ReportError("; ".join(problems))


# --- derived figures ------------------------------------------------------------------------


def scenario_runs(report: Mapping[str, Any], scenario: str = "mix") -> dict[int, Mapping[str, Any]]:
    runs = report.get("scaling", {}).get(scenario, [])
    return {run["replicas"]: run for run in sorted(runs, key=lambda r: r["replicas"])}


def efficiency(report: Mapping[str, Any], scenario: str = "mix") -> dict[int, Stat | None]:
    """E(N) = rps(N) / (N x rps(1)), median over median, spread by round; None without a 1-replica run."""
    runs = scenario_runs(report, scenario)
    one = runs.get(1, {}).get("rps")
    return {n: ratio(run["rps"], scaled(one, n)) for n, run in runs.items()}


def of_bare(report: Mapping[str, Any], scenario: str = "mix", replicas: int = 1) -> Stat | None:
    """Throughput of ``replicas`` replicas as a share of as many bare gunicorn workers at the same CPU share."""
    run = scenario_runs(report, scenario).get(replicas)
    bare = report["baselines"].get("bare_gunicorn_rps")
    return None if run is None else ratio(run["rps"], scaled(bare, replicas))


def via_nginx(report: Mapping[str, Any]) -> Stat | None:
    """One replica through nginx: the mix's 1-replica run (a legacy report measured it separately)."""
    legacy = report["baselines"].get("via_nginx_replica_rps")
    return legacy if legacy is not None else scenario_runs(report).get(1, {}).get("rps")


def proxy_efficiency(report: Mapping[str, Any]) -> Stat | None:
    return ratio(via_nginx(report), report["baselines"].get("direct_replica_rps"))


def scenario_of(entry: Mapping[str, Any]) -> str:
    """The requests of a fixed-rate entry: ``mix`` (also every entry of a report before the cached-only row)."""
    return str(entry.get("scenario", "mix"))


def fixed_rate_at(report: Mapping[str, Any], load: float, scenario: str = "mix") -> Mapping[str, Any] | None:
    for entry in report.get("fixed_rate", []):
        if abs(entry["load"] - load) < 1e-9 and scenario_of(entry) == scenario:
            return entry
    return None


def data_path(report: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    data_size = report.get("data_size") or {}
    return next((path for path in data_size.get("paths", []) if path["name"] == name), None)


def size_ratio(path: Mapping[str, Any] | None) -> Stat | None:
    """The path's cost at the large size over its cost at the small one (mean latency, see COST in measure)."""
    if path is None or path.get("small") is None or path.get("large") is None:
        return None
    return ratio(path["large"]["mean_ms"], path["small"]["mean_ms"])


def closed_loop_errors(report: Mapping[str, Any]) -> int:
    runs = [run for scenario in SCENARIOS for run in report.get("scaling", {}).get(scenario, [])]
    read_write = report.get("read_write")
    return sum(run["errors"] for run in runs) + (read_write["errors"] if read_write else 0)


def articles_text(count: int | None) -> str:
    return "?" if count is None else f"{count:,}"


def targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: what it asks, the measured figure (a stat, a count or None), whether it
    is met (judged on the median; None: not measured)."""
    e = efficiency(report)
    half = fixed_rate_at(report, 0.5)
    data_size, settings = report.get("data_size") or {}, report.get("settings", {})
    # Before a size is measured, the sizes the run was set up for (the by default).
    small = data_size.get("small_articles") or settings.get("articles") or 1_000
    large = data_size.get("large_articles") or settings.get("large_articles") or 1_000_000
    sizes = f"{articles_text(large)} vs {articles_text(small)} articles"
    deep = data_path(report, "api_deep")
    deep_rows = ((deep or {}).get("large") or {}).get("rows_before") or 10_000
    read_write = report.get("read_write")
    hit = read_write.get("hit_ratio") if read_write else None
    write_rate = read_write.get("write_rate") if read_write else None

    def at_least(value: Stat | None, bound: float) -> bool | None:
        return None if value is None else median(value) >= bound

    def at_most(value: Stat | None, bound: float) -> bool | None:
        return None if value is None else median(value) <= bound

    half_p99 = half["p99_ms"] if half else None
    half_errors = half.get("errors", 0) if half else 0
    cached_share, mix_share = of_bare(report, "cached"), of_bare(report, "mix")
    first, deepest = size_ratio(data_path(report, "api_first")), size_ratio(deep)
    errors = closed_loop_errors(report)
    return [
        {
            "target": f"1 replica / bare gunicorn (same CPU share), cached only >= {TARGET_CACHED_OF_BARE:.2f}",
            "value": cached_share,
            "met": at_least(cached_share, TARGET_CACHED_OF_BARE),
        },
        {
            "target": f"1 replica / bare gunicorn (same CPU share), today's mix >= {TARGET_MIX_OF_BARE:.2f}",
            "value": mix_share,
            "met": at_least(mix_share, TARGET_MIX_OF_BARE),
        },
        {"target": f"E(2) on the mix >= {TARGET_E2:.2f}", "value": e.get(2), "met": at_least(e.get(2), TARGET_E2)},
        {"target": f"E(4) on the mix >= {TARGET_E4:.2f}", "value": e.get(4), "met": at_least(e.get(4), TARGET_E4)},
        {
            "target": f"p99 at 50% of peak <= {TARGET_P99_AT_HALF_MS:g} ms, 0 errors (open loop)",
            "value": half_p99,
            "unit": "ms",
            "met": False if half_errors else at_most(half_p99, TARGET_P99_AT_HALF_MS),
        },
        {
            "target": f"keyed API list, first page: cost at {sizes} <= {TARGET_DATA_RATIO:g}x",
            "value": first,
            "unit": "x",
            "met": at_most(first, TARGET_DATA_RATIO),
        },
        {
            "target": f"keyed API list, page {articles_text(deep_rows)} rows deep by cursor vs the deepest page:"
            f" cost at {sizes} <= {TARGET_DATA_RATIO:g}x",
            "value": deepest,
            "unit": "x",
            "met": at_most(deepest, TARGET_DATA_RATIO),
        },
        {
            "target": f"anonymous home page hit ratio (X-Cache hit or shared) with {write_rate or 1:g} write/s"
            f" during the saturating mix > {TARGET_HIT_RATIO:.0%}",
            "value": hit,
            "unit": "%",
            "met": None if hit is None else median(hit) > TARGET_HIT_RATIO,
        },
        {"target": "0 errors in every closed-loop run", "value": errors, "met": errors == 0},
    ]
