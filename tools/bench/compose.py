"""Docker commands and the benchmark's own compose project: start, scale, run one-offs, remove."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tools.shell import CommandError as BenchError
from tools.shell import http_get, run, say, wait_until


class Stack:
    """The benchmark's own compose project, with every web replica limited to the same CPU share."""

    def __init__(self, project: str, http_port: int, cpus: float, workers: int = 1) -> None:
        self.project = project
        self.cpus = cpus
        self.base_url = f"http://127.0.0.1:{http_port}"
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
        """`docker compose` in this project, with the bench profile's services; its stdout."""
        cmd = ["docker", "compose", "-p", self.project, "--profile", "bench", *args]
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

    def one_off(self, *command: str) -> subprocess.CompletedProcess[str]:
        """A command in a one-off app container without the replicas' CPU limit (`migrate` has none)."""
        cmd = ["docker", "compose", "-p", self.project, "run", "--rm", "--no-deps", "-T", "migrate", *command]
        return run(cmd, env=self.env, check=False)

    def container_ids(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def exec(self, service: str, *command: str, timeout: float = 600) -> str:
        return self.compose("exec", "-T", service, *command, timeout=timeout)

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
        """Every container of ``service`` has the CPU share the figures are about (compose's `cpus`)."""
        wanted = round(self.cpus * 1e9)
        for cid in self.container_ids(service):
            nano = int(run(["docker", "inspect", "-f", "{{.HostConfig.NanoCpus}}", cid]).stdout.strip() or 0)
            if nano != wanted:
                raise BenchError(
                    f"{service} container {cid[:12]} has a CPU limit of {nano / 1e9:g} cores, not {self.cpus:g}:"
                    " does docker-compose.yml still set `cpus: ${WEB_CPUS:-0}` on it?"
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
