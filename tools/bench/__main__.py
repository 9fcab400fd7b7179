"""`python -m tools.bench`: the command line of `make bench` (see the package's docstring for what it measures).

Settings (environment; the options of the same name win): BENCH_REPLICAS=1,2,4 BENCH_REPETITIONS=5
BENCH_CPUS=0.25 BENCH_CPU_PERIOD=10000 (us; 100000 is Docker's default) BENCH_DURATION=20 BENCH_WARMUP=5
BENCH_PATH_DURATION=10 BENCH_CONNECTIONS=16 (per replica) BENCH_THREADS=2
BENCH_MIX=detail=6,list=3,uncached=1 BENCH_LOADS=0.5,0.8 BENCH_ARTICLES=1000
BENCH_LARGE_ARTICLES=1000000 (0: no large size) BENCH_WRITE_RATE=1 (0: no read/write run)
BENCH_PROBE_RATE=15 BENCH_PROJECT=newsdesk-bench BENCH_HTTP_PORT=8090 BENCH_KEEP=0 BENCH_README=1
BENCH_STRICT=0; BENCH_API_WRITE_LIMIT=6000/minute (the replicas' API_WRITE_LIMIT in the bench project).
A short trial: --replicas 1,2 --repetitions 2 --duration 3 --warmup 1 --path-duration 2
--large-articles 20000 --no-readme --out /tmp/bench-dev.
Exit status: 0, 1 when a step failed (the large size failing still writes the report), 2 with --strict
when a target is missed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from dotenv import dotenv_values

from tools.bench import render
from tools.bench.compose import CPU_PERIOD_RANGE, MIN_CPU_QUOTA, BenchError, cpu_quota, say
from tools.bench.measure import Benchmark, estimate_minutes
from tools.shell import ROOT


def env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def int_list(text: str) -> list[int]:
    values = [int(part) for part in text.replace(" ", "").split(",") if part]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,2,4, got {text!r}")
    return sorted(set(values))


def float_list(text: str) -> list[float]:
    values = [float(part) for part in text.replace(" ", "").split(",") if part]
    if not values or any(not 0 < v <= 1.5 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions of the peak like 0.5,0.8, got {text!r}")
    return values


def at_least(low: float, kind: type[int] | type[float] = int) -> Any:
    """An argparse type: a number of ``kind`` that is at least ``low``."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"expected at least {low:g}, got {text!r}")
        return value

    return parse


def mix_weights(text: str) -> dict[str, int]:
    weights = {"detail": 0, "list": 0, "uncached": 0}
    for part in text.replace(" ", "").split(","):
        name, _, value = part.partition("=")
        if name not in weights or not value.isdigit():
            raise argparse.ArgumentTypeError(f"expected detail=6,list=3,uncached=1, got {text!r}")
        weights[name] = int(value)
    if not sum(weights.values()):
        raise argparse.ArgumentTypeError("the mix needs at least one positive weight")
    return weights


def flag(name: str, default: str) -> bool:
    return env(name, default) == "1"


def main_project() -> str | None:
    """The main stack's project name from .env (None when unset or unreadable: a test container's user)."""
    try:
        return dotenv_values(ROOT / ".env").get("COMPOSE_PROJECT_NAME")
    except OSError:
        return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="The scaling benchmark of `make bench`, in a compose project of its own.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add("--replicas", type=int_list, default=int_list(env("BENCH_REPLICAS", "1,2,4")))
    add(
        "--repetitions",
        type=at_least(1),
        default=int(env("BENCH_REPETITIONS", "5")),
        help="rounds: each configuration is measured this many times, interleaved",
    )
    add("--cpus", type=float, default=float(env("BENCH_CPUS", "0.25")), help="CPU share per replica")
    add(
        "--cpu-period",
        type=int,
        default=int(env("BENCH_CPU_PERIOD", "10000")),
        help="CFS period in microseconds for the replicas and bare gunicorn (quota = cpus x period)",
    )
    add("--workers", type=int, default=int(env("BENCH_WORKERS", "1")), help="gunicorn workers per replica")
    add("--duration", type=float, default=float(env("BENCH_DURATION", "20")), help="measured seconds")
    add("--warmup", type=float, default=float(env("BENCH_WARMUP", "5")), help="seconds before each")
    add(
        "--path-duration",
        type=float,
        default=float(env("BENCH_PATH_DURATION", "10")),
        help="measured seconds of each one-connection run of the data-size comparison",
    )
    add("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "16")), help="per replica")
    add("--threads", type=int, default=int(env("BENCH_THREADS", "2")), help="wrk threads")
    add("--mix", type=mix_weights, default=mix_weights(env("BENCH_MIX", "detail=6,list=3,uncached=1")))
    add("--loads", type=float_list, default=float_list(env("BENCH_LOADS", "0.5,0.8")))
    add("--articles", type=at_least(1), default=int(env("BENCH_ARTICLES", "1000")), help="seeded articles")
    add(
        "--large-articles",
        type=at_least(0),
        default=int(env("BENCH_LARGE_ARTICLES", "1000000")),
        help="articles of the large data size (0: measure the small size only)",
    )
    add(
        "--write-rate",
        type=at_least(0, float),
        default=float(env("BENCH_WRITE_RATE", "1")),
        help="API writes a second in the read/write run (0: no such run)",
    )
    add(
        "--probe-rate",
        type=at_least(0.1, float),
        default=float(env("BENCH_PROBE_RATE", "15")),
        help="home page requests a second counting X-Cache in the read/write run",
    )
    add("--project", default=env("BENCH_PROJECT", "newsdesk-bench"), help="compose project of the run")
    add("--http-port", type=int, default=int(env("BENCH_HTTP_PORT", "8090")), help="its nginx port")
    add("--out", type=Path, default=Path(env("BENCH_OUT", str(ROOT / "reports" / "bench"))))
    add("--no-build", dest="build", action="store_false", help="use the images as they are")
    add("--keep", action="store_true", default=flag("BENCH_KEEP", "0"), help="leave it running")
    add("--no-readme", dest="readme", action="store_false", default=flag("BENCH_README", "1"))
    add("--strict", action="store_true", default=flag("BENCH_STRICT", "0"), help="exit 2 on a missed target")
    add("--command", default=env("BENCH_COMMAND", ""), help="how the run was started (for the report)")
    add(
        "--render-only",
        action="store_true",
        help="measure nothing: re-render scaling.md, scaling.png (and README's section) from OUT/scaling.json",
    )
    args = p.parse_args(argv)
    if args.project in ("newsdesk", main_project()):
        p.error(f"--project {args.project} is the main stack's; the benchmark needs a project of its own")
    if args.cpus <= 0:
        p.error("--cpus must be positive (a CPU share is what makes replicas comparable)")
    low, high = CPU_PERIOD_RANGE
    if not low <= args.cpu_period <= high or cpu_quota(args.cpus, args.cpu_period) < MIN_CPU_QUOTA:
        p.error(f"--cpu-period must be {low}-{high} us with a quota (cpus x period) of at least {MIN_CPU_QUOTA} us")
    if args.large_articles and args.large_articles <= args.articles:
        p.error("--large-articles must be more than --articles (or 0)")
    return args


def relative(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def publish(report: dict[str, Any], out: Path, readme: bool) -> dict[str, Path]:
    """Write scaling.{json,md,png} into ``out`` and, with ``readme``, README's section between the markers."""
    paths = render.write_reports(report, out)
    if readme and render.update_readme(ROOT / "README.md", report):
        say("README.md: the Performance figures between the bench markers are updated")
    return paths


def render_only(args: argparse.Namespace) -> int:
    report = json.loads((args.out / "scaling.json").read_text(encoding="utf-8"))
    for path in publish(report, args.out, args.readme).values():
        print(f"wrote {relative(path)}")
    return 0


def measure(args: argparse.Namespace) -> int:
    def terminate(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    estimate = estimate_minutes(args)
    say(f"benchmark in project {args.project} (the main stack is not touched); about {estimate:.0f} minutes")
    started = time.monotonic()
    bench = Benchmark(args)
    try:
        measured = bench.execute()
    except (BenchError, subprocess.TimeoutExpired) as exc:
        say(f"benchmark failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        if args.keep:
            say(f"leaving project {args.project} running (BENCH_KEEP=1): docker compose -p {args.project} down -v")
        else:
            say(f"removing project {args.project}")
            bench.stack.down()

    report = bench.report(measured)
    # The measurements first, so that a report that cannot be rendered loses nothing.
    history = args.out / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    history.mkdir(parents=True, exist_ok=True)
    (history / "raw.json").write_text(json.dumps(bench.raw, indent=2) + "\n")
    (history / "scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    paths = publish(report, args.out, args.readme)
    for path in paths.values():
        shutil.copy2(path, history / path.name)
    print()
    print(render.render_markdown(report, image=None))
    for path in paths.values():
        print(f"wrote {relative(path)}")
    say(f"done in {(time.monotonic() - started) / 60:.1f} minutes; the main stack was not touched")
    if measured["data_size"].get("large_error"):
        say("the large data size was not measured (see the report)")
        return 1
    missed = render.missed(report)
    if missed:
        say("targets missed: " + "; ".join(missed))
        return 2 if args.strict else 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        return render_only(args)
    if shutil.which("docker") is None:
        raise SystemExit("error: docker is missing (make bench runs `make prepare` first)")
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
