"""The benchmark's steps in order: setup, baselines, scaling runs, proxy comparison, open loop; then the report."""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import sys
from datetime import UTC, datetime
from typing import Any

from tools.bench.compose import BenchError, Stack, http_get, run, say, wait_until
from tools.bench.cpu import CpuMeter, machine
from tools.bench.load import CLIENT, LoadClient
from tools.bench.report import RUN_FIELDS

HELLO = "bench-hello"
BENCH_EMAIL = "bench@bench.invalid"
NGINX = "http://nginx:80"

#: A scaling run's fields as the report lists them: the documented ones (RUN_FIELDS) first, then these.
MORE_RUN_KEYS = ("p90_ms", "p999_ms", "max_ms", "requests", "connections", "error_kinds", "throttled", "host_cpu")
#: What a fixed-rate entry keeps of openloop.py's result.
OPEN_LOOP_KEYS = ("rps", "p50_ms", "p99_ms", "p999_ms", "errors", "generator_lag_p99_ms", "cpu")
MIX_LABELS = {
    "detail": "cached article pages",
    "list": "cached list pages",
    "uncached": "uncached keyed API list (replica)",
}


class Benchmark:
    """One run in its own compose project; ``raw`` keeps every generator result for runs/<time>/raw.json."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = Stack(args.project, args.http_port, args.cpus, args.workers)
        self.client = LoadClient(self.stack, args.threads)
        self.raw: dict[str, Any] = {}
        self.meter: CpuMeter | None = None

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
            f"(WEB_CPUS={self.args.cpus:g}), nginx on {self.stack.base_url.removeprefix('http://')}"
        )
        self.stack.up("nginx", "web", "db-replica", "cache", scale_web=1)
        self.stack.up(CLIENT, no_deps=True)

    def seed(self) -> tuple[list[int], int]:
        """A fixed data set; the ids of the newest articles and how many there are."""
        say(f"seeding {self.args.articles} articles (fixed random seed)")
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

    def api_key(self) -> str:
        password = secrets.token_urlsafe(18)
        proc = self.stack.one_off(
            "flask", "users", "create", "--email", BENCH_EMAIL, "--name", "Bench", "--password", password, "--exist-ok"
        )
        if proc.returncode != 0:
            raise BenchError(f"creating the bench user failed:\n{proc.stdout}{proc.stderr}")
        proc = self.stack.one_off("flask", "keys", "create", "--email", BENCH_EMAIL, "--name", "bench")
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise BenchError(f"creating the bench API key failed:\n{proc.stdout}{proc.stderr}")
        key = lines[-1].strip()
        status, _, _ = http_get(f"{self.stack.base_url}/api/v1/me", {"Authorization": f"Bearer {key}"})
        if status != 200:
            raise BenchError(f"the new API key is refused ({status})")
        return key

    # -- measurements --

    def timed(self, label: str, url: str, mix: str, connections: int) -> dict[str, Any]:
        """Warm up, then one measured wrk run with CPU accounting."""
        assert self.meter is not None
        if self.args.warmup > 0:
            self.client.wrk(url, mix, connections, self.args.warmup)
        with self.meter.measure() as cpu:
            result = self.client.wrk(url, mix, connections, self.args.duration)
        result.update(cpu)
        self.raw.setdefault("wrk", {})[label] = result
        say(
            f"{label}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms,"
            f" {result['errors']} errors; host CPU {result['host_cpu']['busy_cores']:.2f} cores"
        )
        return result

    def baselines(self) -> dict[str, Any]:
        say("baseline: nginx answering /bench/static by itself")
        static = self.timed("nginx_static", NGINX, "static.tsv", 64)
        say(f"baseline: one bare gunicorn gevent worker (hello-world JSON, {self.args.cpus:g} CPU)")
        self.stack.up(HELLO, no_deps=True)
        self.stack.check_cpu_limit(HELLO)
        hello_url = f"http://{HELLO}:8000"
        wait_until(lambda: self.client.answers(hello_url, "hello.tsv"), 60, "bench-hello to answer")
        hello = self.timed("bare_gunicorn", hello_url, "hello.tsv", self.args.connections)
        self.stack.compose("rm", "-sf", HELLO)
        return {"nginx_static": static, "bare_gunicorn": hello}

    def proxy_comparison(self, connections: int) -> dict[str, float]:
        """One replica directly (no nginx) and through nginx, in interleaved segments.

        Segments alternate ABBA (direct, nginx, nginx, direct, ...) so that drift and
        neighbours' load fall on both sides alike; each side's throughput is its requests
        over its seconds. Same mix, same connections, same client container.
        """
        assert self.meter is not None
        segment = max(5.0, self.args.duration / 2)
        rounds = 2
        targets = {"direct": "http://web:8000", "via_nginx": NGINX}
        say(f"one replica directly vs through nginx: {2 * rounds} interleaved segments of {segment:g} s")
        if self.args.warmup > 0:
            self.client.wrk(targets["direct"], "mix.tsv", connections, self.args.warmup)
        totals = {name: [0, 0.0] for name in targets}
        segments = []
        for index in range(rounds):
            order = ["direct", "via_nginx"] if index % 2 == 0 else ["via_nginx", "direct"]
            for name in order:
                with self.meter.measure() as cpu:
                    result = self.client.wrk(targets[name], "mix.tsv", connections, segment)
                result.update(cpu)
                segments.append({"target": name, **result})
                totals[name][0] += result["requests"]
                totals[name][1] += result["duration_s"]
                if result["errors"]:
                    say(f"  {name}: {result['errors']} errors")
        self.raw["proxy_comparison"] = segments
        rps = {name: round(requests / seconds, 1) for name, (requests, seconds) in totals.items()}
        say(
            f"direct {rps['direct']:,.0f} req/s, through nginx {rps['via_nginx']:,.0f} req/s:"
            f" proxy efficiency {rps['via_nginx'] / rps['direct']:.2f}"
        )
        return rps

    def fixed_rate(self, peak: dict[str, Any]) -> list[dict[str, Any]]:
        """Open-loop runs at each of ``--loads`` times the peak's throughput, with the peak's replica count."""
        assert self.meter is not None
        entries = []
        for load in self.args.loads:
            rate = load * peak["rps"]
            say(f"open loop at {load:.0%} of the peak ({rate:,.0f} req/s, {peak['replicas']} replicas)")
            with self.meter.measure() as cpu:
                result = self.client.open_loop(rate, self.args.duration, max(3.0, min(self.args.warmup, 10.0)))
            result.update(cpu)
            self.raw.setdefault("openloop", {})[f"{load:g}"] = result
            say(
                f"  achieved {result['rps']:,.0f} req/s: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms,"
                f" p99.9 {result['p999_ms']} ms, {result['errors']} errors"
                f" (generator lag p99 {result['generator_lag_p99_ms']} ms)"
            )
            entries.append(
                {"load": load, "replicas": peak["replicas"], "target_rps": round(rate, 1)}
                | {name: result[name] for name in OPEN_LOOP_KEYS}
            )
        return entries

    # -- the whole run --

    def execute(self) -> dict[str, Any]:
        """Every step; the measured figures: runs, baselines, fixed_rate."""
        args = self.args
        self.build_images()
        self.start()
        ids, total = self.seed()
        key = self.api_key()
        self.raw["mix"] = self.client.write_mixes(ids, total, key, args.mix)
        self.meter = CpuMeter(args.project)
        say(f"CPU accounting: {'cgroup counters' if self.meter.mode == 'cgroup' else 'docker stats sampling'}")

        base = self.baselines()
        runs: list[dict[str, Any]] = []
        proxy: dict[str, float] | None = None
        for replicas in args.replicas:
            self.stack.scale(replicas)
            connections = args.connections * replicas
            result = self.timed(f"{replicas}_replicas", NGINX, "mix.tsv", connections)
            runs.append({"replicas": replicas, "connections": connections, **result})
            if replicas == 1:
                proxy = self.proxy_comparison(connections)

        peak = max(runs, key=lambda r: r["rps"])
        fixed: list[dict[str, Any]] = []
        if args.loads:
            if runs[-1]["replicas"] != peak["replicas"]:
                self.stack.scale(peak["replicas"])
            fixed = self.fixed_rate(peak)

        return {
            "runs": runs,
            "baselines": {
                "nginx_static_rps": base["nginx_static"]["rps"],
                "bare_gunicorn_rps": base["bare_gunicorn"]["rps"],
                "direct_replica_rps": proxy["direct"] if proxy else None,
                "via_nginx_replica_rps": proxy["via_nginx"] if proxy else None,
            },
            "fixed_rate": fixed,
        }

    def report(self, measured: dict[str, Any]) -> dict[str, Any]:
        """scaling.json's content: the host, the commit, the settings and the measured figures."""
        args = self.args
        total = sum(args.mix.values())
        mix_text = ", ".join(
            f"{args.mix[kind] / total:.0%} {label}" for kind, label in MIX_LABELS.items() if args.mix[kind]
        )
        return {
            "machine": machine(),
            "commit": commit(),
            "command": args.command or shlex.join(["python", "-m", "tools.bench", *sys.argv[1:]]),
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "settings": {
                "replicas": args.replicas,
                "cpus": args.cpus,
                "gunicorn_workers": str(args.workers),
                "gunicorn_max_requests": 0,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections_per_replica": args.connections,
                "wrk_threads": args.threads,
                "generator": "wrk (closed loop) and loadtest/openloop.py (open loop) in the bench-client container",
                "mix": mix_text,
                "mix_detail": self.raw.get("mix"),
                "articles": args.articles,
                "project": args.project,
            },
            "units": {"cpu": "cores (1.0 = one core busy for the whole measured interval)", "latency": "ms"},
            "runs": [{k: r[k] for k in (*RUN_FIELDS, *MORE_RUN_KEYS) if k in r} for r in measured["runs"]],
            "baselines": measured["baselines"],
            "fixed_rate": measured["fixed_rate"],
        }


def commit() -> str:
    """The checked-out commit, ``+dirty`` with uncommitted changes to tracked files."""
    try:
        sha = run(["git", "rev-parse", "--short=12", "HEAD"], timeout=10).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=10).stdout.strip()
    except (BenchError, OSError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha
