"""The faults, one at a time, each with the promise it is held to beyond the common ones.

Common to every fault (checked in ``__main__``): no request fails (a write refused with 503
problem+json and Retry-After counts as refused, and is a failure except where the primary is
down), every acknowledged write is in the primary, every article becomes ``ready``, view counts
are exact (or, where Redis is stopped, short by at most the views made while it was), and an
edited article is never read stale right after the fault.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from tools.chaos import checks
from tools.chaos.load import Outcome
from tools.chaos.project import Project
from tools.shell import ROOT, CommandError, say, wait_until

#: How long a stopped part stays stopped.
OUTAGE_S = 10.0
#: Web replicas of the scaling run, and the client backends PgBouncer must hold each server to.
POOLED_REPLICAS = 20
MAX_CLIENT_BACKENDS = 60
#: How long the twenty replicas serve the load while the backends are sampled.
HOLD_S = 20.0
#: Requests through nginx that warm the new replicas before the load (about 7 per process).
WARM_REQUESTS = 300
#: The new replicas have booted when all of them together use less CPU than this (% of a core).
SETTLED_CPU_PERCENT = 30.0


@dataclass
class Context:
    project: Project
    emails: list[str]
    password: str
    rng: random.Random = field(default_factory=lambda: random.Random(7))


@dataclass
class Window:
    """When a fault began and when its repair ended (monotonic), and what it found."""

    started: float = 0.0
    repaired: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def begin(self) -> None:
        self.started = time.monotonic()

    def end(self) -> None:
        self.repaired = time.monotonic()

    def during(self, outcome: Outcome) -> bool:
        return self.started <= outcome.due <= self.repaired


class Fault:
    name = ""
    description = ""
    #: Writes may be refused (503 problem+json, Retry-After): the primary is down.
    refusals_expected = False
    #: Views made while Redis is unreachable are not counted (the page is served all the same).
    views_may_be_lost = False
    #: Seconds after the repair within which every article must be `ready`.
    process_within = 60.0

    def prepare(self, ctx: Context) -> None:
        """Set-up before the load starts (its requests are not judged)."""

    def inject(self, ctx: Context, window: Window) -> None:
        raise NotImplementedError

    def restore(self, ctx: Context) -> None:
        """Undo ``prepare`` once the load has stopped."""

    def tolerated(self, outcome: Outcome, window: Window) -> bool:
        """A failed request the fault's promise allows."""
        return False

    def assess(self, outcomes: list[Outcome], window: Window) -> None:
        """Promises of this fault's own, judged on the load's outcomes."""


def stop_start(ctx: Context, window: Window, service: str) -> None:
    project = ctx.project
    count = len(project.ids(service))
    window.begin()
    project.compose("stop", service)
    time.sleep(OUTAGE_S)  # the outage itself
    project.compose("start", service)
    project.wait_healthy(service, count)
    window.end()


def kill_restart(ctx: Context, window: Window, service: str, container: str | None = None) -> None:
    """SIGKILL one container of ``service`` (docker kill leaves it stopped), then start it again."""
    project = ctx.project
    count = len(project.ids(service))
    target = container or ctx.rng.choice(project.ids(service))
    window.begin()
    project.docker("kill", target)
    time.sleep(OUTAGE_S / 2)
    project.docker("start", target)
    project.wait_healthy(service, count)
    window.end()


class Baseline(Fault):
    name = "baseline"
    description = f"no fault, {OUTAGE_S:.0f} s: the yardstick for the rows below"

    def inject(self, ctx: Context, window: Window) -> None:
        window.begin()
        time.sleep(OUTAGE_S)
        window.end()


class WebKill(Fault):
    name = "web-kill"
    description = "kill -9 one web replica (5 s), then start it"

    def inject(self, ctx: Context, window: Window) -> None:
        kill_restart(ctx, window, "web")

    def tolerated(self, outcome: Outcome, window: Window) -> bool:
        # A POST the killed replica was serving: nginx answers 502 and must not resend it.
        return (
            outcome.kind == "write"
            and outcome.status == 502
            and outcome.due <= window.started + 0.5
            and outcome.done >= window.started
        )


class Deploy(Fault):
    name = "deploy"
    description = "make deploy (scripts/deploy.sh): every web, worker and beat container replaced"

    def inject(self, ctx: Context, window: Window) -> None:
        project = ctx.project
        old = set(project.ids("web"))
        window.begin()
        project.deploy()
        window.end()
        new = set(project.ids("web"))
        if old & new:
            window.problems.append(f"{len(old & new)} web container(s) were not replaced")
        if len(new) != len(old):
            window.problems.append(f"web went from {len(old)} to {len(new)} replicas")
        window.notes.append(f"{len(new)} web replicas replaced in {window.repaired - window.started:.0f} s")


class RedisRestart(Fault):
    name = "redis-restart"
    description = "docker compose restart redis; then a logged-in reader makes 20 requests"
    views_may_be_lost = True  # Redis is down for a moment: a view then is not counted (never twice)

    def inject(self, ctx: Context, window: Window) -> None:
        project = ctx.project
        browser = checks.login(project.base_url, ctx.emails[0], ctx.password)
        window.begin()
        project.compose("restart", "redis")
        project.wait_healthy("redis", 1)
        window.end()
        logged_out = sum(not checks.logged_in(project.base_url, browser) for _ in range(20))
        if logged_out:
            window.problems.append(f"logged out on {logged_out} of 20 requests after the restart")
        else:
            window.notes.append("still logged in on 20 of 20 requests")


class RedisStopStart(Fault):
    name = "redis-stop-start"
    description = f"docker compose stop redis, {OUTAGE_S:.0f} s, start"
    views_may_be_lost = True

    def inject(self, ctx: Context, window: Window) -> None:
        stop_start(ctx, window, "redis")

    def assess(self, outcomes: list[Outcome], window: Window) -> None:
        writes = [o for o in outcomes if o.kind == "write" and window.during(o)]
        slowest = max((o.answer_s for o in writes), default=0.0)
        if slowest >= 1.0:
            window.problems.append(f"a write took {slowest:.2f} s with Redis down (promise: under 1 s)")
        window.notes.append(
            f"slowest of {len(writes)} writes with Redis down: answered {slowest * 1000:.0f} ms after it was sent"
        )


class CacheRestart(Fault):
    name = "cache-restart"
    description = "docker compose restart cache"

    def inject(self, ctx: Context, window: Window) -> None:
        window.begin()
        ctx.project.compose("restart", "cache")
        ctx.project.wait_healthy("cache", 1)
        window.end()


class ReplicaStopStart(Fault):
    name = "replica-stop-start"
    description = f"docker compose stop db-replica, {OUTAGE_S:.0f} s, start"

    def inject(self, ctx: Context, window: Window) -> None:
        stop_start(ctx, window, "db-replica")


class PrimaryStopStart(Fault):
    name = "db-stop-start"
    description = f"docker compose stop db (the primary), {OUTAGE_S:.0f} s, start: read-only mode"
    refusals_expected = True

    def inject(self, ctx: Context, window: Window) -> None:
        stop_start(ctx, window, "db")

    def assess(self, outcomes: list[Outcome], window: Window) -> None:
        refused = [o for o in outcomes if o.refused]
        slowest = max((o.answer_s for o in refused), default=0.0)
        if slowest >= 1.0:
            window.problems.append(f"a refused write took {slowest:.2f} s (promise: under 1 s)")
        later = sorted(o.done for o in outcomes if o.kind == "write" and o.ok and o.due >= window.repaired)
        if not later:
            window.problems.append("no write succeeded after the primary returned")
        elif later[0] - window.repaired > 30:
            window.problems.append(f"the first write succeeded {later[0] - window.repaired:.0f} s after the return")
        else:
            window.notes.append(
                f"{len(refused)} writes refused (the slowest answered {slowest * 1000:.0f} ms after it was sent);"
                f" writes back"
                f" {max(0.0, later[0] - window.repaired):.1f} s after the primary was healthy"
            )


class WorkerKill(Fault):
    name = "worker-kill"
    description = "docker kill the worker running a 20 s smoke task; it must complete elsewhere within 180 s"
    process_within = 180.0

    def inject(self, ctx: Context, window: Window) -> None:
        project = ctx.project
        since = time.time()
        smoke = subprocess.Popen(
            ["docker", "compose", "exec", "-T", "web", "flask", "tasks", "smoke", "--seconds", "20", "--wait", "180"],
            cwd=ROOT, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            holder = project.wait_for_container_log("worker", "smoke sleep started", since, 60)
            kill_restart(ctx, window, "worker", holder)
            out, err = smoke.communicate(timeout=240)
            window.end()  # recovered when the task held by the killed worker has completed
        finally:
            if smoke.poll() is None:
                smoke.kill()
        if smoke.returncode != 0:
            window.problems.append(f"the smoke task did not complete: {(out + err).strip()[-300:]}")
            return
        result = json.loads(out.strip().splitlines()[-1])
        window.notes.append(f"the killed worker's smoke task completed on another after {result['elapsed']} s")
        if result["elapsed"] > 180:
            window.problems.append(f"the smoke task took {result['elapsed']} s (promise: 180 s)")


class BeatKill(Fault):
    name = "beat-kill"
    description = "docker kill beat (5 s), then start it"

    def inject(self, ctx: Context, window: Window) -> None:
        kill_restart(ctx, window, "beat")


def web_cpu_percent(project: Project) -> float:
    """The CPU the web containers use now, in percent of one core, summed (docker stats)."""
    ids = project.ids("web")
    out = project.docker("stats", "--no-stream", "--format", "{{.CPUPerc}}", *ids, timeout=120)
    return sum(float(line.strip().rstrip("%") or 0) for line in out.splitlines() if line.strip())


class ScaleWeb20(Fault):
    """Twenty web replicas under the load: PgBouncer holds each server's backends down.

    The replicas are started before the load (``prepare``): seventeen replicas importing the app
    at once take both cores of this machine for a minute, and nginx sends them requests as soon
    as they listen, which is a test of the machine, not of the pooling (measured: most requests
    time out meanwhile). On a real cluster, scale in steps or with `make deploy`'s pinning.
    """

    name = "scale-web-20"
    description = (
        f"{POOLED_REPLICAS} web replicas (scaled up before the load), {HOLD_S:.0f} s: PgBouncer keeps each"
        f" PostgreSQL server at most {MAX_CLIENT_BACKENDS} client backends"
    )

    def __init__(self) -> None:
        self.replicas = 0
        self.workers = 0

    def scale(self, ctx: Context, web: int) -> None:
        project = ctx.project
        project.compose("up", "-d", "--no-recreate", "--scale", f"web={web}", "--scale", f"worker={self.workers}")
        project.wait_healthy("web", web, timeout=600)

    def prepare(self, ctx: Context) -> None:
        self.replicas = len(ctx.project.ids("web"))
        self.workers = len(ctx.project.ids("worker"))
        say(f"{self.name}: scaling web from {self.replicas} to {POOLED_REPLICAS} before the load")
        self.scale(ctx, POOLED_REPLICAS)
        # Healthy means one gunicorn worker answers; the others may still be importing the app.
        wait_until(lambda: web_cpu_percent(ctx.project) < SETTLED_CPU_PERCENT, 300, "the new replicas to settle")
        # A new process's first requests build what later ones reuse (connections, templates,
        # its page cache): a few per process, before the load, as a rolling deploy's would be.
        with requests.Session() as warm:
            for i in range(WARM_REQUESTS):
                path = ("/", "/api/v1/articles", "/popular")[i % 3]
                warm.get(ctx.project.base_url + path, timeout=30)

    def inject(self, ctx: Context, window: Window) -> None:
        peaks = {"db": 0, "db-replica": 0}
        window.begin()
        held_until = time.monotonic() + HOLD_S
        while time.monotonic() < held_until:
            for server in peaks:
                peaks[server] = max(peaks[server], ctx.project.client_backends(server))
            time.sleep(0.5)
        window.end()
        for server, peak in peaks.items():
            if peak > MAX_CLIENT_BACKENDS:
                window.problems.append(f"{server}: {peak} client backends (promise: at most {MAX_CLIENT_BACKENDS})")
        window.notes.append(
            f"{len(ctx.project.ids('web'))} web replicas: at most {peaks['db']} client backends on db and"
            f" {peaks['db-replica']} on db-replica (sampled every 0.5 s)"
        )

    def restore(self, ctx: Context) -> None:
        say(f"{self.name}: scaling web back to {self.replicas}")
        self.scale(ctx, self.replicas)


FAULTS: dict[str, Callable[[], Fault]] = {
    fault.name: fault
    for fault in (
        Baseline,
        WebKill,
        Deploy,
        RedisRestart,
        RedisStopStart,
        CacheRestart,
        ReplicaStopStart,
        PrimaryStopStart,
        WorkerKill,
        BeatKill,
        ScaleWeb20,
    )
}
#: What `make test` runs: the promises CI guards.
SHORT = ("deploy", "redis-restart", "db-stop-start")


def select(names: str) -> list[Fault]:
    chosen = [name.strip() for name in names.split(",") if name.strip()] if names != "all" else list(FAULTS)
    unknown = [name for name in chosen if name not in FAULTS]
    if unknown:
        raise CommandError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    return [FAULTS[name]() for name in chosen]
