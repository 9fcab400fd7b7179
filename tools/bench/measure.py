"""The benchmark's steps in order: setup, data-size runs at the small size, scaling rounds, open-loop
rounds, read/write rounds, then the large data size; and scaling.json's content from their results.

Every configuration is measured once per round, and the rounds are interleaved (round 1 does
each configuration once, then round 2 ...), in alternating order (1, 2, 4 replicas, then 4, 2,
1), so that drift and the neighbours' load fall on every configuration alike; the report keeps
every value and gives the median and the min-max of each figure (tools/bench/stats.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tools.bench import site
from tools.bench.compose import BenchError, Stack, http_get, probe_intervals, run, say, wait_until
from tools.bench.cpu import CpuMeter, machine
from tools.bench.load import (
    CLIENT,
    SCENARIO_FILES,
    LoadClient,
    cached_weights,
    request_line,
    write_lines,
)
from tools.bench.report import SCENARIO_NAMES
from tools.bench.stats import median_of_maps, summarise

T = TypeVar("T")

HELLO = "bench-hello"
BENCH_EMAIL = "bench@bench.invalid"
NGINX = "http://nginx:8080"
DIRECT = "http://web:8000"

#: The deep page: ``per_page=100`` and at most 100 next links, so 10,000 rows deep at 1M articles.
DEEP_PER_PAGE = 100
DEEP_FOLLOWS = 100
#: Seconds of warm-up before each one-connection data-size run (the first request of a deep page
#: at 1M articles may read cold pages from disk; the measured ones should not).
PATH_WARMUP = 2.0
#: Overheads for the time estimate (seconds): starting a generator, a scale step, seeding 1M.
RUN_OVERHEAD = 3.0
SCALE_STEP = 15.0
LARGE_SEED_PER_MILLION = 120.0

MIX_LABELS = {
    "detail": "cached article pages",
    "list": "cached list pages",
    "uncached": "uncached keyed API list (replica)",
}
SCENARIO_LABELS = {"mix": "today's mix", "cached": "cached only"}


@dataclass(frozen=True)
class UncachedPath:
    """One request of the uncached read path whose cost is compared at both data sizes."""

    name: str
    label: str


PATHS = (
    UncachedPath("html_list", "logged-in list page `/` (session cookie: never cached)"),
    UncachedPath("api_first", "keyed API list, first page (`per_page=20`)"),
    UncachedPath("api_deep", f"keyed API list, deepest page by `next` links (`per_page={DEEP_PER_PAGE}`)"),
)


def rotated(items: Sequence[T], by: int) -> list[T]:
    """``items`` starting at position ``by`` (each round starts the paths somewhere else)."""
    by %= max(1, len(items))
    return [*items[by:], *items[:by]]


def serpentine(items: Sequence[T], round_index: int) -> list[T]:
    """``items`` in order in even rounds and reversed in odd ones (ABBA over the rounds)."""
    return list(items) if round_index % 2 == 0 else list(reversed(items))


def estimate_minutes(args: argparse.Namespace) -> float:
    """A rough duration of the whole run with these settings (the run prints it before starting)."""
    reps = args.repetitions
    run_s = args.duration + args.warmup + RUN_OVERHEAD
    path_runs = (2 if args.large_articles else 1) * reps * len(PATHS) * (args.path_duration + PATH_WARMUP + 2)
    scaling_runs = reps * (2 + sum(3 if n == 1 else 2 for n in args.replicas)) * run_s
    scaling_steps = reps * (len(args.replicas) + 1) * SCALE_STEP
    open_loop = reps * (len(args.loads) + 1) * (args.duration + max(3.0, min(args.warmup, 10.0)) + RUN_OVERHEAD)
    read_write = (reps * run_s + 45) if args.write_rate else 0
    large = 60 + LARGE_SEED_PER_MILLION * args.large_articles / 1e6 if args.large_articles else 0
    setup = 150
    return (path_runs + scaling_runs + scaling_steps + open_loop + read_write + large + setup) / 60


class Benchmark:
    """One run in its own compose project; ``raw`` keeps every generator result for runs/<time>/raw.json."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = Stack(args.project, args.http_port, args.cpus, args.cpu_period, args.workers)
        self.client = LoadClient(self.stack, args.threads)
        self.raw: dict[str, Any] = {"wrk": [], "openloop": [], "phase_seconds": {}}
        self.meter: CpuMeter | None = None
        self.replicas = 0
        self.reader_key = ""
        self.writer_key = ""
        self.cookie = ""

    # -- setup --

    def build_images(self) -> None:
        """The load-generator image; the app image is `make build`'s (the bench target depends on it)."""
        if not self.args.build:
            return
        say("building the load-generator image (cached when up to date)")
        self.stack.compose("build", CLIENT, timeout=1800)

    def start(self) -> None:
        if self.stack.exists():
            say(f"removing a previous {self.args.project} project")
            self.stack.down()
        say(
            f"starting project {self.args.project}: db, db-replica, redis, cache, nginx, 1 web replica "
            f"({self.args.cpus:g} CPU: {self.stack.cpu_quota} us per {self.args.cpu_period} us period),"
            f" nginx on {self.stack.base_url.removeprefix('http://')}"
        )
        self.stack.up("nginx", "web", "db-replica", "cache", scale_web=1)
        self.stack.check_cpu_limit("web")
        self.stack.wait_for_replicas(1)  # the replicas have no Docker healthcheck here
        self.replicas = 1
        self.stack.up(CLIENT, no_deps=True)

    def seed(self) -> tuple[list[int], int]:
        """A fixed data set; the ids of the newest articles and how many there are."""
        say(f"seeding {self.args.articles:,} articles (fixed random seed)")
        proc = self.stack.one_off(
            "flask", "seed", "--users", "20", "--articles", str(self.args.articles), "--random-seed", "1", "--if-empty"
        )
        listing = wait_until(self.first_page, 60, "the seeded articles to be listed")
        if listing["total"] < self.args.articles:
            raise BenchError(f"seeding failed ({listing['total']} articles):\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            say(f"note: `flask seed` exited {proc.returncode} after committing the data; continuing")
        return [item["id"] for item in listing["items"]], listing["total"]

    def first_page(self) -> dict[str, Any] | None:
        status, _, body = http_get(f"{self.stack.base_url}/api/v1/articles?per_page=100&page=1")
        if status != 200:
            return None
        data = json.loads(body)
        return data if data["items"] else None

    def keyed_total(self) -> int:
        """How many articles the keyed API list counts (a key that never wrote reads the replica)."""
        status, _, body = http_get(f"{self.stack.base_url}/api/v1/articles?per_page=1", self.reader_headers())
        if status != 200:
            raise BenchError(f"the keyed API list answered {status}")
        total: int = json.loads(body)["total"]
        return total

    def accounts(self) -> None:
        """The bench user (whose session reads the logged-in list page), a key that only reads and one that writes."""
        password = secrets.token_urlsafe(18)
        proc = self.stack.one_off(
            "flask", "users", "create", "--email", BENCH_EMAIL, "--name", "Bench", "--password", password, "--exist-ok"
        )
        if proc.returncode != 0:
            raise BenchError(f"creating the bench user failed:\n{proc.stdout}{proc.stderr}")
        self.reader_key = self.new_key("bench")
        # Writes through a key of their own: read-your-writes routing is per key, so the reading
        # key keeps reading the replica while the other one writes.
        self.writer_key = self.new_key("bench-writer")
        self.cookie = site.login(self.stack.base_url, BENCH_EMAIL, password)

    def new_key(self, name: str) -> str:
        proc = self.stack.one_off("flask", "keys", "create", "--email", BENCH_EMAIL, "--name", name)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise BenchError(f"creating the API key {name} failed:\n{proc.stdout}{proc.stderr}")
        key = lines[-1].strip()
        status, _, _ = http_get(f"{self.stack.base_url}/api/v1/me", {"Authorization": f"Bearer {key}"})
        if status != 200:
            raise BenchError(f"the new API key {name} is refused ({status})")
        return key

    def reader_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.reader_key}"}

    def scale(self, replicas: int) -> None:
        if replicas != self.replicas:
            self.stack.scale(replicas)
            self.replicas = replicas

    # -- one measurement --

    def timed(
        self,
        label: str,
        url: str,
        mix: str,
        connections: int,
        duration: float | None = None,
        warmup: float | None = None,
        quiet: bool = False,
        statuses: bool = True,
    ) -> dict[str, Any]:
        """Warm up, then one measured wrk run with CPU accounting (and errors by status, but for the
        baselines, whose rate the client's per-response work would lower)."""
        assert self.meter is not None
        duration = self.args.duration if duration is None else duration
        warmup = self.args.warmup if warmup is None else warmup
        if warmup > 0:
            self.client.wrk(url, mix, connections, warmup, statuses=False)
        with self.meter.measure() as cpu:
            result = self.client.wrk(url, mix, connections, duration, statuses)
        result.update(cpu)
        self.raw["wrk"].append({"label": label, **result})
        if not quiet:
            say(
                f"{label}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms,"
                f" {result['errors']} errors{statuses_text(result)};"
                f" host CPU {result['host_cpu']['busy_cores']:.2f} cores"
            )
        return result

    # -- data size: the uncached read path at one connection --

    def prepare_paths(self, size: str) -> dict[str, Any]:
        """Request files for the uncached paths at this data size; what each one requests."""
        deep = site.deep_page(
            self.stack.base_url, f"/api/v1/articles?per_page={DEEP_PER_PAGE}", self.reader_headers(), DEEP_FOLLOWS
        )
        say(
            f"deepest page ({size}): {deep.rows_before:,} rows deep after {deep.follows} next links"
            + (" (the API has no cursor: by page number)" if deep.method == "page" else "")
        )
        key_header = self.reader_headers()
        requests = {
            "html_list": ("/", {"Cookie": self.cookie}),
            "api_first": ("/api/v1/articles?per_page=20", key_header),
            "api_deep": (deep.path, key_header),
        }
        self.client.put(
            {
                f"path-{name}-{size}.tsv": [request_line("GET", path, headers)]
                for name, (path, headers) in requests.items()
            }
        )
        described: dict[str, Any] = {name: {"request": f"GET {path}"} for name, (path, _) in requests.items()}
        described["api_deep"] |= {"rows_before": deep.rows_before, "follows": deep.follows, "reached_by": deep.method}
        return described

    def path_rounds(self, size: str) -> dict[str, Any]:
        """Each uncached path, one connection, 1 replica, ``repetitions`` times interleaved; per path the stats."""
        self.scale(1)
        described = self.prepare_paths(size)
        results: dict[str, list[dict[str, Any]]] = {path.name: [] for path in PATHS}
        say(
            f"uncached paths at {size} size: one connection, 1 replica, {self.args.path_duration:g} s each,"
            f" {self.args.repetitions} rounds"
        )
        for index in range(self.args.repetitions):
            for path in rotated(PATHS, index):
                result = self.timed(
                    f"{size}/{path.name}/r{index + 1}",
                    NGINX,
                    f"path-{path.name}-{size}.tsv",
                    1,
                    duration=self.args.path_duration,
                    warmup=PATH_WARMUP,
                    quiet=True,
                )
                results[path.name].append(result)
                say(
                    f"  round {index + 1}, {path.name} ({size}): mean {result['mean_ms']:.1f} ms,"
                    f" p99 {result['p99_ms']:.1f} ms, {result['errors']} errors"
                )
        return {
            name: described[name]
            | {
                "mean_ms": summarise(r["mean_ms"] for r in runs),
                "p50_ms": summarise(r["p50_ms"] for r in runs),
                "p99_ms": summarise(r["p99_ms"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "error_statuses": sum_counts([error_statuses(r) for r in runs]),
                "requests": sum(r["requests"] for r in runs),
            }
            for name, runs in results.items()
        }

    def seed_large(self) -> dict[str, Any]:
        """Add articles up to ``--large-articles`` (with `flask seed --bulk` where the app has it), then
        VACUUM ANALYZE and wait for the replica: the large size is measured in its steady state, not
        while autovacuum or WAL replay catch up with a million new rows."""
        self.scale(1)
        before = self.keyed_total()
        add = self.args.large_articles - before
        help_text = self.stack.one_off("flask", "seed", "--help").stdout
        bulk = "--bulk" in help_text
        started = time.monotonic()
        if add > 0:
            say(f"seeding {add:,} more articles ({'--bulk' if bulk else 'no --bulk in this app: the slow path'})")
            command = ["flask", "seed", "--articles", str(add), *(["--bulk"] if bulk else [])]
            proc = self.stack.one_off(*command, timeout=3600)
            if proc.returncode != 0:
                raise BenchError(f"`{shlex.join(command)}` failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        seeded_s = time.monotonic() - started
        say("VACUUM (ANALYZE) on the primary, then waiting for the replica to replay it")
        self.psql("db", "VACUUM (ANALYZE)", timeout=1800)
        lsn = self.psql("db", "SELECT pg_current_wal_lsn()")
        wait_until(
            lambda: self.psql("db-replica", f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == "t",
            1800,
            "the replica to replay the seeded articles",
            interval=2,
        )
        total = self.keyed_total()
        if total < self.args.large_articles:
            raise BenchError(f"after seeding, the API counts {total:,} articles, not {self.args.large_articles:,}")
        say(f"{total:,} articles, seeded in {seeded_s:.0f} s, ready after {time.monotonic() - started:.0f} s")
        return {
            "articles_before": before,
            "articles_added": max(0, add),
            "bulk": bulk,
            "seed_s": round(seeded_s, 1),
            "ready_s": round(time.monotonic() - started, 1),
        }

    def psql(self, service: str, sql: str, timeout: float = 120) -> str:
        """One SQL statement in ``service`` (db or db-replica) as the database's owner; its output, trimmed."""
        script = f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 -tAqc "{sql}"'
        return self.stack.exec(service, "sh", "-c", script, timeout=timeout).strip()

    # -- scaling: baselines and the two read scenarios, by replica count --

    def baselines_once(self, index: int) -> dict[str, dict[str, Any]]:
        static = self.timed(f"nginx_static/r{index + 1}", NGINX, "static.tsv", 64, statuses=False)
        self.stack.up(HELLO, no_deps=True)
        self.stack.check_cpu_limit(HELLO)
        hello_url = f"http://{HELLO}:8000"
        wait_until(lambda: self.client.answers(hello_url, "hello.tsv"), 60, "bench-hello to answer")
        hello = self.timed(f"bare_gunicorn/r{index + 1}", hello_url, "hello.tsv", self.args.connections, statuses=False)
        self.stack.stop(HELLO)
        return {"nginx_static": static, "bare_gunicorn": hello}

    def scaling_rounds(self) -> dict[str, Any]:
        """Per round: the baselines, then for each replica count the mix and the cached-only run (and,
        at 1 replica, the mix sent to the replica directly: the proxy's cost); orders alternate."""
        args = self.args
        steps: list[int | None] = [None, *args.replicas]  # None: the baselines
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        baselines: dict[str, list[dict[str, Any]]] = {"nginx_static": [], "bare_gunicorn": []}
        for index in range(args.repetitions):
            say(f"scaling round {index + 1} of {args.repetitions}")
            for step in serpentine(steps, index):
                if step is None:
                    for name, result in self.baselines_once(index).items():
                        baselines[name].append(result)
                    continue
                self.scale(step)
                connections = args.connections * step
                scenarios = ["mix", "direct", "cached"] if step == 1 else ["mix", "cached"]
                for scenario in serpentine(scenarios, index):
                    url, mix = (DIRECT, "mix.tsv") if scenario == "direct" else (NGINX, SCENARIO_FILES[scenario])
                    label = f"{scenario}/{step}/r{index + 1}"
                    runs.setdefault((scenario, step), []).append(self.timed(label, url, mix, connections))
        scaling = {
            scenario: [
                {"replicas": n, "connections": args.connections * n, **aggregate(runs[(scenario, n)])}
                for n in args.replicas
            ]
            for scenario in SCENARIO_FILES
        }
        direct = runs.get(("direct", 1))
        return {
            "scaling": scaling,
            "baselines": {
                "nginx_static_rps": summarise(r["rps"] for r in baselines["nginx_static"]),
                "bare_gunicorn_rps": summarise(r["rps"] for r in baselines["bare_gunicorn"]),
                "direct_replica_rps": summarise(r["rps"] for r in direct) if direct else None,
            },
        }

    # -- latency at fixed rates --

    def open_loop_rounds(self, peak_replicas: int, peak_rps: float) -> list[dict[str, Any]]:
        """Open-loop runs of the mix at each of ``--loads`` times the peak's median throughput, and of the
        cached-only mix at the first of them (the same rate without the uncached reads: how much of the
        tail they make), ``repetitions`` rounds."""
        assert self.meter is not None
        args = self.args
        self.scale(peak_replicas)
        # Replicas just started have empty pools and memory, and a fixed rate does not wait for
        # them: warm them as every closed-loop run is warmed (the first open-loop round after a
        # scale-up otherwise measured the replicas' start, with errors).
        self.client.wrk(NGINX, "mix.tsv", args.connections * peak_replicas, args.warmup, statuses=False)
        configurations = [("mix", load) for load in args.loads] + [("cached", min(args.loads))]
        results: dict[tuple[str, float], list[dict[str, Any]]] = {config: [] for config in configurations}
        warmup = max(3.0, min(args.warmup, 10.0))
        for index in range(args.repetitions):
            for scenario, load in serpentine(configurations, index):
                rate = load * peak_rps
                with self.meter.measure() as cpu:
                    result = self.client.open_loop(SCENARIO_FILES[scenario], rate, args.duration, warmup)
                result.update(cpu)
                label = f"open_loop/{load:g}" + ("" if scenario == "mix" else f"/{scenario}")
                self.raw["openloop"].append({"label": f"{label}/r{index + 1}", **result})
                results[scenario, load].append(result)
                say(
                    f"open loop round {index + 1}, {SCENARIO_NAMES[scenario]}, at {load:.0%} of the peak"
                    f" ({rate:,.0f} req/s, {peak_replicas} replicas): achieved {result['rps']:,.0f} req/s,"
                    f" p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {result['errors']} errors"
                    f" (generator lag p99 {result['generator_lag_p99_ms']} ms)"
                )
        return [
            {"scenario": scenario, "load": load, "replicas": peak_replicas, "target_rps": round(load * peak_rps, 1)}
            | {name: summarise(r[name] for r in runs) for name in ("rps", "p50_ms", "p99_ms", "p999_ms")}
            | {
                "generator_lag_p99_ms": summarise(r["generator_lag_p99_ms"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "cpu": median_of_maps([r["cpu"] for r in runs]),
            }
            for (scenario, load), runs in results.items()
        ]

    # -- reads saturating the replicas while articles are written --

    def read_write_rounds(self, replicas: int) -> dict[str, Any]:
        """The mix, closed loop, saturating ``replicas`` replicas while one key publishes ``--write-rate``
        articles a second and a probe asks for the anonymous home page ``--probe-rate`` times a second,
        counting its X-Cache header: how often the home page is still answered from a cache."""
        args = self.args
        self.scale(replicas)
        say("starting worker and beat (the written articles' processing and the outbox relay)")
        self.stack.up("worker", "beat", no_deps=True)
        connections = args.connections * replicas
        count = round(args.write_rate * (args.duration + args.warmup)) + 5
        self.client.put(
            {
                f"writes-{index + 1}.tsv": write_lines(self.writer_key, f"r{index + 1}", count)
                for index in range(args.repetitions)
            }
        )
        rounds: list[dict[str, Any]] = []
        try:
            for index in range(args.repetitions):
                with ThreadPoolExecutor(max_workers=2) as pool:
                    writer = pool.submit(
                        self.client.open_loop, f"writes-{index + 1}.tsv", args.write_rate, args.duration, args.warmup
                    )
                    probe = pool.submit(
                        self.client.open_loop, "home.tsv", args.probe_rate, args.duration, args.warmup, "X-Cache"
                    )
                    reads = self.timed(f"read_write/{replicas}/r{index + 1}", NGINX, "mix.tsv", connections, quiet=True)
                    writes, probed = writer.result(), probe.result()
                self.raw["openloop"] += [
                    {"label": f"writes/r{index + 1}", **writes},
                    {"label": f"home_probe/r{index + 1}", **probed},
                ]
                rounds.append({"reads": reads, "writes": writes, "probe": probed})
                counts = probed.get("header_counts", {})
                ratio = hit_ratio(counts)
                say(
                    f"read/write round {index + 1}: reads {reads['rps']:,.0f} req/s (p99 {reads['p99_ms']:.1f} ms,"
                    f" {reads['errors']} errors{statuses_text(reads)}), {writes['rps']:g} writes/s"
                    f" ({writes['errors']} errors{statuses_text(writes)}),"
                    f" home page X-Cache {counts or 'absent'}"
                    + (f": hit ratio {ratio:.1%}" if ratio is not None else "")
                )
        finally:
            say("stopping worker and beat")
            self.stack.stop("worker", "beat")
        counts = sum_counts([r["probe"].get("header_counts", {}) for r in rounds])
        return {
            "replicas": replicas,
            "connections": connections,
            "write_rate": args.write_rate,
            "probe_rate": args.probe_rate,
            **aggregate([r["reads"] for r in rounds]),
            "writes_per_s": summarise(r["writes"]["rps"] for r in rounds),
            "write_p99_ms": summarise(r["writes"]["p99_ms"] for r in rounds),
            "write_errors": sum(r["writes"]["errors"] for r in rounds),
            "write_error_statuses": sum_counts([error_statuses(r["writes"]) for r in rounds]),
            "hit_ratio": summarise(hit_ratio(r["probe"].get("header_counts", {})) for r in rounds),
            "x_cache": counts,
            "probe_p99_ms": summarise(r["probe"]["p99_ms"] for r in rounds),
            "probe_errors": sum(r["probe"]["errors"] for r in rounds),
            "probe_error_statuses": sum_counts([error_statuses(r["probe"]) for r in rounds]),
        }

    # -- the whole run --

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a step into raw.json's ``phase_seconds`` (where a default run's minutes go)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.raw["phase_seconds"][name] = round(time.monotonic() - started, 1)

    def execute(self) -> dict[str, Any]:
        """Every step; the measured figures (scaling.json's measured part)."""
        args = self.args
        with self.phase("setup"):
            self.build_images()
            self.start()
            ids, total = self.seed()
            self.accounts()
            self.raw["mix"] = self.client.write_mixes(ids, total, self.reader_key, args.mix)
            self.meter = CpuMeter(args.project)
        say(f"CPU accounting: {'cgroup counters' if self.meter.mode == 'cgroup' else 'docker stats sampling'}")

        with self.phase("data_size_small"):
            small = self.path_rounds("small")
            small_total = self.keyed_total()
        with self.phase("scaling"):
            measured = self.scaling_rounds()
        mix = {run["replicas"]: run for run in measured["scaling"]["mix"]}
        peak = max(mix.values(), key=lambda run: run["rps"]["median"])
        with self.phase("open_loop"):
            fixed = self.open_loop_rounds(peak["replicas"], peak["rps"]["median"]) if args.loads else []
            measured["fixed_rate"] = fixed
        with self.phase("read_write"):
            measured["read_write"] = self.read_write_rounds(max(args.replicas)) if args.write_rate else None

        data_size: dict[str, Any] = {
            "cost": COST_DEFINITION,
            "small_articles": small_total,
            "large_articles": None,
            "paths": [
                {"name": path.name, "label": path.label, "small": small[path.name], "large": None} for path in PATHS
            ],
        }
        if args.large_articles:
            try:
                with self.phase("seed_large"):
                    data_size["seeding"] = self.seed_large()
                    data_size["large_articles"] = self.keyed_total()
                with self.phase("data_size_large"):
                    large = self.path_rounds("large")
                for entry in data_size["paths"]:
                    entry["large"] = large[entry["name"]]
            except (BenchError, OSError, ValueError) as exc:
                # Everything before is measured: report it, and say why the large size is missing.
                say(f"the large data size failed: {exc}")
                data_size["large_error"] = str(exc)[:2000]
        measured["data_size"] = data_size
        return measured

    def report(self, measured: dict[str, Any]) -> dict[str, Any]:
        """scaling.json's content: the host, the commit, the settings and the measured figures."""
        args = self.args
        return {
            "schema": 2,
            "machine": machine(),
            "commit": commit(),
            "command": command_text(args.command),
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "settings": {
                "replicas": args.replicas,
                "repetitions": args.repetitions,
                "cpus": args.cpus,
                "cpu_period_us": args.cpu_period,
                "cpu_quota_us": self.stack.cpu_quota,
                "gunicorn_workers": str(args.workers),
                "gunicorn_max_requests": 0,
                "web_docker_healthcheck": False,  # compose.override.yml: the probes' exec costs CPU
                "dependency_healthcheck_interval_s": probe_intervals(),
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "path_duration_s": args.path_duration,
                "connections_per_replica": args.connections,
                "wrk_threads": args.threads,
                "generator": "wrk (closed loop) and loadtest/openloop.py (open loop) in the bench-client container",
                "order": ORDER,
                "mix": mix_text(args.mix),
                "cached_mix": mix_text(cached_weights(args.mix)),
                "mix_detail": self.raw.get("mix"),
                "articles": args.articles,
                "large_articles": args.large_articles,
                "write_rate": args.write_rate,
                "probe_rate": args.probe_rate,
                "project": args.project,
            },
            "units": {"cpu": "cores (1.0 = one core busy for the whole measured interval)", "latency": "ms"},
            **measured,
        }


COST_DEFINITION = (
    "mean latency at one connection (closed loop, 1 replica, through nginx): no queueing, so it is the"
    " sum of the work one request needs on its way (the replica's CPU at its share, the database's"
    " query, the round trips); a saturated throughput would show only the slowest stage, and at a"
    " 0.25 CPU share that is the replica's CPU, which hides a query that grows with the data"
)
ORDER = (
    "interleaved rounds: each round measures every configuration once (baselines, then 1, 2, 4 replicas;"
    " the next round in the reverse order), and the figures are the median and the min-max over the rounds"
)


def command_text(command: str) -> str:
    """How the run was started: ``--command`` (make bench's) after the BENCH_* settings it was given,
    or this process's command line."""
    if not command:
        return shlex.join(["python", "-m", "tools.bench", *sys.argv[1:]])
    given = sorted((name, value) for name, value in os.environ.items() if name.startswith("BENCH_"))
    return " ".join([*(f"{name}={shlex.quote(value)}" for name, value in given), command])


def error_statuses(result: dict[str, Any]) -> dict[str, int]:
    """A generator result's error responses by status: wrk's error_statuses, or openloop.py's statuses >= 400."""
    every = result.get("error_statuses") or result.get("statuses") or {}
    return {code: n for code, n in every.items() if int(code) >= 400}


def statuses_text(result: dict[str, Any]) -> str:
    """`` (503: 4, 500: 1)``: a run's error responses by status ('' without any)."""
    counts = error_statuses(result)
    return f" ({', '.join(f'{code}: {n}' for code, n in sorted(counts.items()))})" if counts else ""


def mix_text(weights: dict[str, int]) -> str:
    total = sum(weights.values())
    return ", ".join(f"{weights[kind] / total:.0%} {label}" for kind, label in MIX_LABELS.items() if weights[kind])


def aggregate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one closed-loop configuration: stats of its figures, summed errors, median CPU."""
    return {
        "rps": summarise(r["rps"] for r in results),
        "p50_ms": summarise(r["p50_ms"] for r in results),
        "p99_ms": summarise(r["p99_ms"] for r in results),
        "p999_ms": summarise(r["p999_ms"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "error_kinds": sum_counts([r.get("error_kinds", {}) for r in results]),
        "error_statuses": sum_counts([r.get("error_statuses", {}) for r in results]),
        "cpu": median_of_maps([r["cpu"] for r in results]),
        "throttled": median_of_maps([r.get("throttled", {}) for r in results]),
        "host_busy_cores": summarise(r["host_cpu"]["busy_cores"] for r in results),
    }


#: X-Cache values that mean "answered from a cache": the process's memory, or the shared Redis cache.
CACHE_HITS = ("hit", "shared")


def hit_ratio(counts: dict[str, int]) -> float | None:
    """(hit + shared) / the probe's answers (errors are not counted here but as probe errors);
    None when no answer carried X-Cache at all."""
    total = sum(counts.values())
    if not total or counts.get("(none)", 0) == total:
        return None
    return sum(counts.get(value, 0) for value in CACHE_HITS) / total


def sum_counts(maps: Sequence[dict[str, int]]) -> dict[str, int]:
    summed: dict[str, int] = {}
    for counts in maps:
        for value, count in counts.items():
            summed[value] = summed.get(value, 0) + count
    return dict(sorted(summed.items()))


def commit() -> str:
    """The checked-out commit, ``+dirty`` with uncommitted changes to tracked files."""
    try:
        sha = run(["git", "rev-parse", "--short=12", "HEAD"], timeout=10).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=10).stdout.strip()
    except (BenchError, OSError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha
