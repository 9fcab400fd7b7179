"""Docker commands and the benchmark's own compose project: start, scale, run one-offs, remove.

The project is docker-compose.yml plus tools/bench/compose.override.yml, which gives the web
replicas and the bare-gunicorn baseline their CPU share as a CFS quota per period (instead
of compose's `cpus`, whose period is Docker's 100 ms) and raises the API's write limit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tools.shell import ROOT, http_get, run, say, wait_until
from tools.shell import CommandError as BenchError

OVERRIDE = Path(__file__).with_name("compose.override.yml")
#: The kernel's bounds for a CFS period (microseconds); a quota is at least 1 ms too.
CPU_PERIOD_RANGE = (1_000, 1_000_000)
MIN_CPU_QUOTA = 1_000


class _OverrideLoader(yaml.SafeLoader):
    """YAML with compose's own tags (``!reset``) read as nothing: only the plain settings are wanted."""


_OverrideLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def probe_intervals() -> str:
    """The override's healthcheck intervals for the dependencies, as "shortest-longest" seconds."""
    services = yaml.load(OVERRIDE.read_text(), Loader=_OverrideLoader)["services"]
    seconds = sorted(
        int(str(service["healthcheck"]["interval"]).removesuffix("s"))
        for service in services.values()
        if (service.get("healthcheck") or {}).get("interval")
    )
    return f"{seconds[0]}-{seconds[-1]}"


def cpu_quota(cpus: float, period_us: int) -> int:
    """The CFS quota (microseconds per period) that gives ``cpus`` cores at ``period_us``."""
    return round(cpus * period_us)


class Stack:
    """The benchmark's own compose project, with every web replica limited to the same CPU share."""

    def __init__(self, project: str, http_port: int, cpus: float, cpu_period: int, workers: int = 1) -> None:
        self.project = project
        self.cpus = cpus
        self.cpu_period = cpu_period
        self.cpu_quota = cpu_quota(cpus, cpu_period)
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.env = {
            **os.environ,
            "HTTP_PORT": str(http_port),
            "HTTPS_PORT": os.environ.get("BENCH_HTTPS_PORT") or "8093",
            "WEB_CPUS": "0",  # the override file's quota and period replace `cpus`
            "BENCH_CPU_PERIOD": str(self.cpu_period),
            "BENCH_CPU_QUOTA": str(self.cpu_quota),
            "GUNICORN_WORKERS": str(workers),
            # Steady state: recycling the only worker of a 0.25-CPU replica leaves it unable to
            # answer for the seconds a new worker takes to boot at that share (see the notes).
            "GUNICORN_MAX_REQUESTS": "0",
            # The read/write run's article processing: one worker is plenty for a write a second.
            "WORKERS": "1",
            # No backup service in this project, so no pgBackRest stanza: archiving would fail every
            # minute (three pgbackrest runs) and keep every WAL segment of the 1M seed in pg_wal.
            "ARCHIVE_MODE": "off",
        }
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        self.env.pop("COMPOSE_PROFILES", None)
        self.files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(OVERRIDE)]

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        """`docker compose` in this project, with the bench profile's services; its stdout."""
        cmd = ["docker", "compose", "-p", self.project, *self.files, "--profile", "bench", *args]
        return run(cmd, env=self.env, timeout=timeout, check=check).stdout

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

    def one_off(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A command in a one-off app container without the replicas' CPU limit (`migrate` has none)."""
        cmd = ["docker", "compose", "-p", self.project, *self.files, "run", "--rm", "--no-deps", "-T", "migrate"]
        return run([*cmd, *command], env=self.env, timeout=timeout, check=False)

    def stop(self, *services: str) -> None:
        """Stop and remove the containers of ``services`` (their data volumes, if any, stay)."""
        self.compose("rm", "-sf", *services, timeout=180)

    def container_ids(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def exec(self, service: str, *command: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
        """``command`` in the running ``service`` (with ``env`` added to its environment); its stdout."""
        settings = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
        return self.compose("exec", "-T", *settings, service, *command, timeout=timeout)

    def copy_into(self, service: str, source: Path, target: str) -> None:
        """Replace the directory ``target`` in the service's container with the contents of ``source``."""
        ids = self.container_ids(service)
        if not ids:
            raise BenchError(f"{service} is not running")
        run(["docker", "exec", "-u", "0", ids[0], "rm", "-rf", target])
        run(["docker", "cp", f"{source}/.", f"{ids[0]}:{target}"])

    def scale(self, replicas: int) -> None:
        say(f"scaling web to {replicas} replica{'s' if replicas > 1 else ''}")
        self.up("web", scale_web=replicas, no_deps=True)
        self.check_cpu_limit("web")
        self.wait_for_replicas(replicas)

    def check_cpu_limit(self, service: str) -> None:
        """Every container of ``service`` has the CPU share the figures are about: the override
        file's quota per period, and no other limit (`cpus` would conflict or come on top)."""
        wanted = (self.cpu_period, self.cpu_quota, 0)
        template = "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.NanoCpus}}"
        for cid in self.container_ids(service):
            found = tuple(int(v) for v in run(["docker", "inspect", "-f", template, cid]).stdout.split())
            if found != wanted:
                raise BenchError(
                    f"{service} container {cid[:12]} has CPU period, quota and nano-CPUs {found}, not {wanted}:"
                    f" does {OVERRIDE.relative_to(ROOT)} still set cpu_period and cpu_quota on it?"
                )

    def wait_for_replicas(self, replicas: int) -> None:
        """nginx re-resolves `web` every few seconds: wait until it spreads requests over all of them."""

        def all_serving() -> bool:
            seen = set()
            for _ in range(12 * replicas):
                status, headers, _ = http_get(f"{self.base_url}/healthz", timeout=5)
                if status == 200:
                    seen.add(headers.get("X-Served-By"))
            return len(seen) == replicas

        wait_until(all_serving, 60, f"nginx to send requests to all {replicas} replicas", interval=1)
