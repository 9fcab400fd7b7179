#!/usr/bin/env python3
"""`make bench`: how throughput and latency scale with web replicas, against physical baselines.

Everything runs in a compose project of its own (``newsdesk-bench``; nginx on
127.0.0.1:8090), made for the run and deleted after it (``down -v``): the main stack
(project ``newsdesk``) is never stopped, rescaled or restarted, and its data is not read.
Its containers' CPU use during the runs is reported as "other containers"; for the
cleanest figures stop it first (``make down``).

1. Start db, db-replica, redis, cache, nginx and one web replica with ``WEB_CPUS`` (0.25 by
   default: each replica gets the same CPU share), seed a fixed data set, create an API key.
2. Baselines: nginx answering ``/bench/static`` by itself, and one bare gunicorn gevent
   worker serving a hello-world JSON (``bench-hello``) with the same CPU share.
3. For N in 1, 2, 4 replicas: warm up, then drive the same saturating read mix through
   nginx with wrk (closed loop, a fixed number of connections per replica) and record
   throughput, p50/p99, errors and every container's CPU (cgroup counters, or
   ``docker stats`` sampling where those cannot be read). With one replica the same mix
   also goes to the replica directly and through nginx in interleaved segments: the
   proxy's cost, with drift and neighbours' load falling on both sides alike.
4. At the peak's replica count, open-loop runs at 50% and 80% of the peak throughput
   (loadtest/openloop.py: latency from each request's scheduled time).
5. Write reports/bench/scaling.{json,md,png} (and a copy under reports/bench/runs/<time>/
   with the raw generator output) and rewrite README's section between the bench markers.

The read mix (``BENCH_MIX``, weights): ``detail`` = cached article pages (/articles/<id>, the
front pages' articles), ``list`` = cached list pages (/?page=1..10), ``uncached`` = the API
list with an API key (GET /api/v1/articles?page=1..50 with ``Authorization: Bearer``): keyed
requests never use the shared cache, and with no write of its own the key's reads go to
the replica (its key lookup alone goes to the primary).

The load generators (wrk, Debian's package, and openloop.py) run in the ``bench-client``
container on the stack's network, so both "through nginx" and "direct" go the same way
and no host port proxy is measured. Needs only Docker, Compose v2 and Python >= 3.11 (standard library).

Settings (environment, or the options below): BENCH_REPLICAS=1,2,4 BENCH_CPUS=0.25
BENCH_DURATION=30 BENCH_WARMUP=5 BENCH_CONNECTIONS=16 (per replica) BENCH_THREADS=2
BENCH_MIX=detail=6,list=3,uncached=1 BENCH_LOADS=0.5,0.8 BENCH_ARTICLES=2000
BENCH_PROJECT=newsdesk-bench BENCH_HTTP_PORT=8090 BENCH_KEEP=0 BENCH_README=1 BENCH_STRICT=0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_report  # a sibling module: scripts/ is no package

ROOT = Path(__file__).resolve().parents[1]
CLIENT = "bench-client"
HELLO = "bench-hello"
CLIENT_DIR = "/tmp/bench"  # inside bench-client: the mix files
LUA = "/srv/loadtest/mix.lua"
OPENLOOP = "/srv/loadtest/openloop.py"
BENCH_EMAIL = "bench@bench.invalid"
HTML_PER_PAGE = 20


def say(message: str) -> None:
    print(f"\033[1m==>\033[0m {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# --- settings ---------------------------------------------------------------------------------


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    p.add_argument("--replicas", type=int_list, default=int_list(env("BENCH_REPLICAS", "1,2,4")))
    p.add_argument("--cpus", type=float, default=float(env("BENCH_CPUS", "0.25")), help="CPU share per replica")
    p.add_argument(
        "--workers", type=int, default=int(env("BENCH_WORKERS", "1")), help="gunicorn workers per replica (as baseline)"
    )
    p.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "30")), help="measured seconds")
    p.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", "5")), help="seconds before each")
    p.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "16")), help="per replica")
    p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "2")), help="wrk threads")
    p.add_argument("--mix", type=mix_weights, default=mix_weights(env("BENCH_MIX", "detail=6,list=3,uncached=1")))
    p.add_argument("--loads", type=float_list, default=float_list(env("BENCH_LOADS", "0.5,0.8")))
    p.add_argument("--articles", type=int, default=int(env("BENCH_ARTICLES", "2000")), help="seeded articles")
    p.add_argument("--project", default=env("BENCH_PROJECT", "newsdesk-bench"), help="compose project of the run")
    p.add_argument("--http-port", type=int, default=int(env("BENCH_HTTP_PORT", "8090")), help="its nginx port")
    p.add_argument("--out", type=Path, default=Path(env("BENCH_OUT", str(ROOT / "reports" / "bench"))))
    p.add_argument("--no-build", dest="build", action="store_false", help="use the images as they are")
    p.add_argument("--keep", action="store_true", default=env("BENCH_KEEP", "0") == "1", help="leave it running")
    p.add_argument("--no-readme", dest="readme", action="store_false", default=env("BENCH_README", "1") == "1")
    p.add_argument("--strict", action="store_true", default=env("BENCH_STRICT", "0") == "1", help="exit 2 on a miss")
    p.add_argument("--command", default=env("BENCH_COMMAND", ""), help="how the run was started (for the report)")
    args = p.parse_args(argv)
    if args.project in ("newsdesk", read_dotenv().get("COMPOSE_PROJECT_NAME")):
        p.error(f"--project {args.project} is the main stack's; the benchmark needs a project of its own")
    if args.cpus <= 0:
        p.error("--cpus must be positive (a CPU share is what makes replicas comparable)")
    return args


def read_dotenv() -> dict[str, str]:
    values: dict[str, str] = {}
    path = ROOT / ".env"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


# --- processes and compose ----------------------------------------------------------------------


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600, check: bool = True) -> str:
    proc = subprocess.run(list(cmd), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise BenchError(f"`{shlex.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


class Stack:
    """The benchmark's own compose project."""

    def __init__(self, project: str, http_port: int, cpus: float, workers: int = 1) -> None:
        self.project = project
        self.http_port = http_port
        self.env = {
            **os.environ,
            "HTTP_PORT": str(http_port),
            "WEB_CPUS": f"{cpus:g}",
            "GUNICORN_WORKERS": str(workers),
            # Steady state: recycling the only worker of a 0.25-CPU replica leaves it unable to
            # answer for the seconds a new worker takes to boot at that share (see the notes).
            "GUNICORN_MAX_REQUESTS": "0",
        }
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        self.env.pop("COMPOSE_PROFILES", None)

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        return run(
            ["docker", "compose", "-p", self.project, "--profile", "bench", *args],
            env=self.env,
            timeout=timeout,
            check=check,
        )

    def up(self, *services: str, scale_web: int | None = None, no_deps: bool = False) -> None:
        args = ["up", "-d", "--wait", "--wait-timeout", "300", "--no-recreate"]
        if no_deps:
            args.append("--no-deps")
        if scale_web is not None:
            args += ["--scale", f"web={scale_web}"]
        self.compose(*args, *services, timeout=420)

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180, check=False)

    def exists(self) -> bool:
        return bool(self.compose("ps", "-a", "-q", check=False).strip())

    def one_off(self, *command: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command in a one-off app container without the replicas' CPU limit (`migrate` has none)."""
        cmd = ["docker", "compose", "-p", self.project, "run", "--rm", "--no-deps", "-T", "migrate", *command]
        return subprocess.run(
            cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600, input=input_text
        )

    def container_id(self, service: str) -> str:
        ids = self.compose("ps", "-q", service).split()
        if not ids:
            raise BenchError(f"{service} is not running")
        return ids[0]

    def exec_client(self, *command: str, timeout: float = 600) -> str:
        return self.compose("exec", "-T", CLIENT, *command, timeout=timeout)

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_until(condition: Any, timeout: float, message: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, BenchError):
            result = condition()
            if result:
                return result
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f}s: {message}")


# --- CPU accounting ---------------------------------------------------------------------------


@dataclass
class CpuSample:
    at: float
    host_busy: float  # seconds of busy CPU time on the host, all cores
    usage: dict[str, float]  # container id -> CPU seconds
    throttle: dict[str, tuple[int, int]]  # container id -> (periods, throttled periods)


def read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_keyed(path: str) -> dict[str, int]:
    try:
        with open(path) as handle:
            return {k: int(v) for k, v in (line.split() for line in handle if line.strip())}
    except (OSError, ValueError):
        return {}


def host_cpu() -> tuple[float, int]:
    """(busy CPU seconds since boot over all cores, number of cores) from /proc/stat."""
    with open("/proc/stat") as handle:
        lines = handle.read().splitlines()
    fields = [int(v) for v in lines[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    cores = sum(1 for line in lines if re.match(r"cpu\d+ ", line))
    return (sum(fields[:8]) - idle) / ticks, cores


class CpuMeter:
    """Per-container CPU seconds from the cgroup counters (v1 or v2); `docker stats` sampling otherwise."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.names: dict[str, str] = {}
        self.refresh()
        self.mode = "cgroup" if all(self._usage(cid) is not None for cid in self.names) and self.names else "stats"

    def refresh(self) -> None:
        out = run(
            ["docker", "ps", "--no-trunc", "--format", '{{.ID}}\t{{.Names}}\t{{.Label "com.docker.compose.project"}}']
        )
        self.names = {}
        for line in out.splitlines():
            cid, name, project = [*line.split("\t"), "", ""][:3]
            self.names[cid] = name.removeprefix(f"{self.project}-") if project == self.project else "other containers"

    @staticmethod
    def _usage(cid: str) -> float | None:
        for path in (
            f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage",
            f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage",
            f"/sys/fs/cgroup/cpuacct/system.slice/docker-{cid}.scope/cpuacct.usage",
            f"/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-{cid}.scope/cpuacct.usage",
        ):
            ns = read_int(path)
            if ns is not None:
                return ns / 1e9
        for path in (
            f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat",
            f"/sys/fs/cgroup/docker/{cid}/cpu.stat",
        ):
            stat = read_keyed(path)
            if "usage_usec" in stat:
                return stat["usage_usec"] / 1e6
        return None

    @staticmethod
    def _throttle(cid: str) -> tuple[int, int] | None:
        for path in (
            f"/sys/fs/cgroup/cpu/docker/{cid}/cpu.stat",
            f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpu.stat",
            f"/sys/fs/cgroup/cpu/system.slice/docker-{cid}.scope/cpu.stat",
            f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat",
            f"/sys/fs/cgroup/docker/{cid}/cpu.stat",
        ):
            stat = read_keyed(path)
            if "nr_periods" in stat:
                return stat["nr_periods"], stat["nr_throttled"]
        return None

    def sample(self) -> CpuSample:
        usage: dict[str, float] = {}
        throttle: dict[str, tuple[int, int]] = {}
        if self.mode == "cgroup":
            for cid in self.names:
                value = self._usage(cid)
                if value is not None:
                    usage[cid] = value
                periods = self._throttle(cid)
                if periods is not None:
                    throttle[cid] = periods
        busy, _ = host_cpu()
        return CpuSample(time.monotonic(), busy, usage, throttle)

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, Any]]:
        """Yields a dict that holds, after the block: cpu {name: cores}, throttled {name: share}, host_cpu."""
        self.refresh()
        result: dict[str, Any] = {}
        stats: dict[str, list[float]] = {}
        stop = threading.Event()
        sampler = None
        if self.mode == "stats":
            sampler = threading.Thread(target=self._sample_stats, args=(stats, stop), daemon=True)
            sampler.start()
        before = self.sample()
        yield result
        after = self.sample()
        stop.set()
        if sampler is not None:
            sampler.join(timeout=10)
        seconds = max(after.at - before.at, 1e-6)
        cpu: dict[str, float] = {}
        throttled: dict[str, float] = {}
        if self.mode == "cgroup":
            for cid, used in after.usage.items():
                if cid in before.usage:
                    name = self.names.get(cid, cid[:12])
                    cpu[name] = cpu.get(name, 0.0) + (used - before.usage[cid]) / seconds
            for cid, (periods, hits) in after.throttle.items():
                if cid in before.throttle and self.names.get(cid) != "other containers":
                    d_periods = periods - before.throttle[cid][0]
                    if d_periods > 0:
                        throttled[self.names.get(cid, cid[:12])] = round(
                            (hits - before.throttle[cid][1]) / d_periods, 3
                        )
        else:
            for name, values in stats.items():
                cpu[name] = sum(values) / len(values) if values else 0.0
        _, cores = host_cpu()
        result["cpu"] = {name: round(value, 3) for name, value in sorted(cpu.items())}
        result["throttled"] = dict(sorted(throttled.items()))
        result["host_cpu"] = {
            "cores": cores,
            "busy_cores": round((after.host_busy - before.host_busy) / seconds, 3),
            "source": "cgroup cpuacct" if self.mode == "cgroup" else "docker stats",
        }

    def _sample_stats(self, stats: dict[str, list[float]], stop: threading.Event) -> None:
        names = {cid[:12]: name for cid, name in self.names.items()}
        while not stop.is_set():
            out = run(["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.CPUPerc}}"], check=False, timeout=30)
            totals: dict[str, float] = {}
            for line in out.splitlines():
                cid, _, perc = line.partition("\t")
                with contextlib.suppress(ValueError):
                    name = names.get(cid[:12], "other containers")
                    totals[name] = totals.get(name, 0.0) + float(perc.strip().rstrip("%")) / 100
            for name, value in totals.items():
                stats.setdefault(name, []).append(value)


# --- load generators --------------------------------------------------------------------------


def wrk_result(output: str) -> dict[str, Any]:
    line = next((line for line in output.splitlines() if line.startswith("WRK_JSON ")), None)
    if line is None:
        raise BenchError(f"no result from wrk:\n{output[-2000:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    seconds = data["duration_us"] / 1e6
    latency = data["latency_us"]
    return {
        "rps": round(data["requests"] / seconds, 1) if seconds else 0.0,
        "requests": data["requests"],
        "duration_s": round(seconds, 3),
        "p50_ms": round(latency["p50"] / 1000, 2),
        "p90_ms": round(latency["p90"] / 1000, 2),
        "p99_ms": round(latency["p99"] / 1000, 2),
        "p999_ms": round(latency["p999"] / 1000, 2),
        "max_ms": round(latency["max"] / 1000, 2),
        "errors": sum(data["errors"].values()),
        "error_kinds": {k: v for k, v in data["errors"].items() if v},
    }


def openloop_result(output: str) -> dict[str, Any]:
    line = next((line for line in output.splitlines() if line.startswith("OPENLOOP_JSON ")), None)
    if line is None:
        raise BenchError(f"no result from openloop.py:\n{output[-2000:]}")
    return json.loads(line.removeprefix("OPENLOOP_JSON "))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = Stack(args.project, args.http_port, args.cpus, args.workers)
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
            f"(WEB_CPUS={self.args.cpus:g}), nginx on 127.0.0.1:{self.args.http_port}"
        )
        self.stack.up("nginx", "web", "db-replica", "cache", scale_web=1)
        self.stack.up(CLIENT, no_deps=True)

    def seed(self) -> tuple[list[int], int]:
        say(f"seeding {self.args.articles} articles (fixed random seed)")
        proc = self.stack.one_off(
            "flask", "seed", "--users", "20", "--articles", str(self.args.articles), "--random-seed", "1", "--if-empty"
        )
        listing = wait_until(lambda: self.listing(1), 60, "the seeded articles to be listed")
        if listing["total"] < self.args.articles:
            raise BenchError(f"seeding failed ({listing['total']} articles):\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            say(f"note: `flask seed` exited {proc.returncode} after committing the data; continuing")
        ids = [item["id"] for item in listing["items"]]
        return ids, listing["total"]

    def listing(self, page: int) -> dict[str, Any] | None:
        status, _, body = http_get(f"{self.stack.base_url()}/api/v1/articles?per_page=100&page={page}")
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
        status, _, _ = http_get(f"{self.stack.base_url()}/api/v1/me", {"Authorization": f"Bearer {key}"})
        if status != 200:
            raise BenchError(f"the new API key is refused ({status})")
        return key

    def write_mixes(self, ids: list[int], total: int, key: str) -> None:
        """The request mixes, copied into bench-client: the read mix, and one file per baseline."""
        rng = random.Random(1)
        weights = self.args.mix
        size = 1000
        html_pages = max(1, min(10, -(-total // HTML_PER_PAGE)))
        api_pages = max(1, min(50, -(-total // 20)))
        front = ids[:HTML_PER_PAGE]
        lines: list[str] = []
        counts = {kind: round(size * w / sum(weights.values())) for kind, w in weights.items()}
        for _ in range(counts["detail"]):
            article = rng.choice(front) if rng.random() < 0.7 else rng.choice(ids)
            lines.append(f"GET\t/articles/{article}")
        for _ in range(counts["list"]):
            lines.append(f"GET\t/?page={rng.randint(1, html_pages)}")
        for _ in range(counts["uncached"]):
            lines.append(
                f"GET\t/api/v1/articles?page={rng.randint(1, api_pages)}&per_page=20\tAuthorization: Bearer {key}"
            )
        rng.shuffle(lines)
        files = {
            "mix.tsv": lines,
            "static.tsv": ["GET\t/bench/static"],
            "hello.tsv": ["GET\t/"],
        }
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                path = Path(tmp) / name
                path.write_text("\n".join(content) + "\n")
                path.chmod(0o644)
            Path(tmp).chmod(0o755)
            client = self.stack.container_id(CLIENT)
            run(["docker", "exec", "-u", "0", client, "rm", "-rf", CLIENT_DIR])
            run(["docker", "cp", f"{tmp}/.", f"{client}:{CLIENT_DIR}"])
        self.raw["mix"] = {
            "weights": weights,
            "requests": len(lines),
            "detail": f"/articles/<id>: {len(ids)} newest articles, 70% from the front page's {len(front)}",
            "list": f"/?page=1..{html_pages}",
            "uncached": f"/api/v1/articles?page=1..{api_pages}&per_page=20 with an API key",
        }

    # -- measurements --

    def wrk(self, url: str, mix: str, connections: int, seconds: float) -> dict[str, Any]:
        threads = max(1, min(self.args.threads, connections))
        output = self.stack.exec_client(
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "5s",
            "-s",
            LUA,
            url,
            "--",
            f"{CLIENT_DIR}/{mix}",
            timeout=seconds + 60,
        )
        return wrk_result(output)

    def measured(self, label: str, url: str, mix: str, connections: int) -> dict[str, Any]:
        """Warm up, then one measured wrk run with CPU accounting."""
        assert self.meter is not None
        if self.args.warmup > 0:
            self.wrk(url, mix, connections, self.args.warmup)
        with self.meter.measure() as cpu:
            result = self.wrk(url, mix, connections, self.args.duration)
        result.update(cpu)
        self.raw.setdefault("wrk", {})[label] = result
        say(
            f"{label}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms,"
            f" {result['errors']} errors; host CPU {result['host_cpu']['busy_cores']:.2f} cores"
        )
        return result

    def scale(self, replicas: int) -> None:
        say(f"scaling web to {replicas} replica{'s' if replicas > 1 else ''}")
        self.stack.up("web", scale_web=replicas, no_deps=True)
        self.check_cpu_limit("web")
        self.wait_for_replicas(replicas)

    def check_cpu_limit(self, service: str) -> None:
        """Every container of ``service`` has the CPU share the figures are about (compose's `cpus`)."""
        wanted = round(self.args.cpus * 1e9)
        for cid in self.stack.compose("ps", "-q", service).split():
            nano = int(run(["docker", "inspect", "-f", "{{.HostConfig.NanoCpus}}", cid]).strip() or 0)
            if nano != wanted:
                raise BenchError(
                    f"{service} container {cid[:12]} has a CPU limit of {nano / 1e9:g} cores, not {self.args.cpus:g}:"
                    " does docker-compose.yml still set `cpus: ${WEB_CPUS:-0}` on it?"
                )

    def wait_for_replicas(self, replicas: int) -> None:
        """nginx re-resolves `web` every few seconds: wait until it spreads requests over all of them."""

        def all_serving() -> bool:
            seen = set()
            for _ in range(12 * replicas):
                status, headers, _ = http_get(f"{self.stack.base_url()}/healthz", timeout=5)
                if status == 200:
                    seen.add(headers.get("X-Served-By"))
            return len(seen) == replicas

        wait_until(all_serving, 60, f"nginx to send requests to all {replicas} replicas", interval=1)

    def baselines(self) -> dict[str, Any]:
        say("baseline: nginx answering /bench/static by itself")
        static = self.measured("nginx_static", "http://nginx:80", "static.tsv", 64)
        say(f"baseline: one bare gunicorn gevent worker (hello-world JSON, {self.args.cpus:g} CPU)")
        self.stack.up(HELLO, no_deps=True)
        self.check_cpu_limit(HELLO)
        wait_until(
            lambda: (
                "WRK_JSON"
                in self.stack.exec_client(
                    "wrk", "-t1", "-c1", "-d1s", "-s", LUA, f"http://{HELLO}:8000", "--", f"{CLIENT_DIR}/hello.tsv"
                )
            ),
            60,
            "bench-hello to answer",
        )
        hello = self.measured("bare_gunicorn", f"http://{HELLO}:8000", "hello.tsv", self.args.connections)
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
        targets = {"direct": "http://web:8000", "via_nginx": "http://nginx:80"}
        say(f"one replica directly vs through nginx: {2 * rounds} interleaved segments of {segment:g} s")
        if self.args.warmup > 0:
            self.wrk(targets["direct"], "mix.tsv", connections, self.args.warmup)
        totals = {name: [0, 0.0] for name in targets}
        segments = []
        for index in range(rounds):
            order = ["direct", "via_nginx"] if index % 2 == 0 else ["via_nginx", "direct"]
            for name in order:
                with self.meter.measure() as cpu:
                    result = self.wrk(targets[name], "mix.tsv", connections, segment)
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

    def open_loop(self, rate: float) -> dict[str, Any]:
        output = self.stack.exec_client(
            "python",
            OPENLOOP,
            "--url",
            "http://nginx",
            "--mix",
            f"{CLIENT_DIR}/mix.tsv",
            "--rate",
            f"{rate:.1f}",
            "--duration",
            f"{self.args.duration:g}",
            "--warmup",
            f"{max(3.0, min(self.args.warmup, 10.0)):g}",
            timeout=self.args.duration + 120,
        )
        return openloop_result(output)

    # -- the whole run --

    def execute(self) -> dict[str, Any]:
        args = self.args
        self.build_images()
        self.start()
        ids, total = self.seed()
        key = self.api_key()
        self.write_mixes(ids, total, key)
        self.meter = CpuMeter(args.project)
        say(f"CPU accounting: {'cgroup counters' if self.meter.mode == 'cgroup' else 'docker stats sampling'}")

        base = self.baselines()
        runs: list[dict[str, Any]] = []
        proxy: dict[str, float] | None = None
        for replicas in args.replicas:
            self.scale(replicas)
            connections = args.connections * replicas
            result = self.measured(f"{replicas}_replicas", "http://nginx:80", "mix.tsv", connections)
            runs.append({"replicas": replicas, "connections": connections, **result})
            if replicas == 1:
                proxy = self.proxy_comparison(connections)

        peak = max(runs, key=lambda r: r["rps"])
        fixed: list[dict[str, Any]] = []
        if args.loads:
            if runs[-1]["replicas"] != peak["replicas"]:
                self.scale(peak["replicas"])
            for load in args.loads:
                rate = load * peak["rps"]
                say(f"open loop at {load:.0%} of the peak ({rate:,.0f} req/s, {peak['replicas']} replicas)")
                assert self.meter is not None
                with self.meter.measure() as cpu:
                    result = self.open_loop(rate)
                result.update(cpu)
                self.raw.setdefault("openloop", {})[f"{load:g}"] = result
                say(
                    f"  achieved {result['rps']:,.0f} req/s: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms,"
                    f" p99.9 {result['p999_ms']} ms, {result['errors']} errors"
                    f" (generator lag p99 {result['generator_lag_p99_ms']} ms)"
                )
                fixed.append(
                    {
                        "load": load,
                        "replicas": peak["replicas"],
                        "target_rps": round(rate, 1),
                        "rps": result["rps"],
                        "p50_ms": result["p50_ms"],
                        "p99_ms": result["p99_ms"],
                        "p999_ms": result["p999_ms"],
                        "errors": result["errors"],
                        "generator_lag_p99_ms": result["generator_lag_p99_ms"],
                        "cpu": result["cpu"],
                    }
                )

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


# --- the report -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count() or 1, "cpu_model": model, "kernel": platform.release()}


def commit() -> str:
    try:
        sha = run(["git", "rev-parse", "--short=12", "HEAD"], timeout=10).strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=10).strip()
    except (BenchError, OSError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def slim(run_result: dict[str, Any]) -> dict[str, Any]:
    """A scaling run as the report lists it (the documented fields first)."""
    keys = (
        "replicas",
        "rps",
        "p50_ms",
        "p99_ms",
        "errors",
        "cpu",
        "p90_ms",
        "p999_ms",
        "max_ms",
        "requests",
        "connections",
        "error_kinds",
        "throttled",
        "host_cpu",
    )
    return {k: run_result[k] for k in keys if k in run_result}


def build_report(args: argparse.Namespace, measured: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    weights = args.mix
    total = sum(weights.values())
    mix_text = ", ".join(
        f"{weights[k] / total:.0%} {label}"
        for k, label in (
            ("detail", "cached article pages"),
            ("list", "cached list pages"),
            ("uncached", "uncached keyed API list (replica)"),
        )
        if weights[k]
    )
    return {
        "machine": machine(),
        "commit": commit(),
        "command": args.command or shlex.join(["python3", "scripts/bench.py", *sys.argv[1:]]),
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
            "mix_detail": raw.get("mix"),
            "articles": args.articles,
            "project": args.project,
        },
        "units": {"cpu": "cores (1.0 = one core busy for the whole measured interval)", "latency": "ms"},
        "runs": [slim(r) for r in measured["runs"]],
        "baselines": measured["baselines"],
        "fixed_rate": measured["fixed_rate"],
    }


def print_summary(report: dict[str, Any], paths: dict[str, Path]) -> None:
    print()
    print(bench_report.render_markdown(report, image=None))
    for path in paths.values():
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("docker",):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} is missing (make bench runs `make prepare` first)")

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    steps = len(args.replicas) + 3 + len(args.loads)
    estimate = 2 + steps * (args.duration + args.warmup + 8) / 60
    say(f"benchmark in project {args.project} (the main stack is not touched); about {estimate:.0f} minutes")
    started = time.monotonic()
    bench = Bench(args)
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

    report = build_report(args, measured, bench.raw)
    paths = bench_report.write_reports(report, args.out)
    history = args.out / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    history.mkdir(parents=True, exist_ok=True)
    for path in paths.values():
        shutil.copy2(path, history / path.name)
    (history / "raw.json").write_text(json.dumps(bench.raw, indent=2) + "\n")
    if args.readme and bench_report.update_readme(ROOT / "README.md", report):
        say("README.md: the Performance figures between the bench markers are updated")
    print_summary(report, paths)
    say(f"done in {(time.monotonic() - started) / 60:.1f} minutes; the main stack was not touched")
    missed = [row for row in bench_report.targets(report) if row["met"] is False]
    if missed:
        say("targets missed: " + "; ".join(row["target"] for row in missed))
        return 2 if args.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
