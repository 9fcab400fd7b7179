"""CPU use during a measured interval: each container's from its cgroup counters, the host's from /proc/stat.

Where the cgroup files cannot be read (not root, another cgroup layout), `docker stats` is
sampled in a thread instead; throttled periods are then not known.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.bench.compose import run

OTHER = "other containers"

# A container's cgroup directory under /sys/fs/cgroup, for the cgroupfs and the systemd drivers.
V1_CPUACCT = (
    "cpuacct/docker/{cid}",
    "cpu,cpuacct/docker/{cid}",
    "cpuacct/system.slice/docker-{cid}.scope",
    "cpu,cpuacct/system.slice/docker-{cid}.scope",
)
V1_CPU = ("cpu/docker/{cid}", "cpu,cpuacct/docker/{cid}", "cpu/system.slice/docker-{cid}.scope")
V2 = ("system.slice/docker-{cid}.scope", "docker/{cid}")


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


def cgroup_files(cid: str, dirs: tuple[str, ...], name: str) -> Iterator[str]:
    for directory in dirs:
        yield f"/sys/fs/cgroup/{directory.format(cid=cid)}/{name}"


def container_usage(cid: str) -> float | None:
    """CPU seconds the container has used (cgroup v1 cpuacct.usage or v2 cpu.stat usage_usec)."""
    for path in cgroup_files(cid, V1_CPUACCT, "cpuacct.usage"):
        ns = read_int(path)
        if ns is not None:
            return ns / 1e9
    for path in cgroup_files(cid, V2, "cpu.stat"):
        stat = read_keyed(path)
        if "usage_usec" in stat:
            return stat["usage_usec"] / 1e6
    return None


def container_throttle(cid: str) -> tuple[int, int] | None:
    """(CFS periods, throttled periods) of the container, from cpu.stat (v1 or v2)."""
    for path in cgroup_files(cid, V1_CPU + V2, "cpu.stat"):
        stat = read_keyed(path)
        if "nr_periods" in stat:
            return stat["nr_periods"], stat["nr_throttled"]
    return None


def host_cpu() -> tuple[float, int]:
    """(busy CPU seconds since boot over all cores, number of cores) from /proc/stat."""
    with open("/proc/stat") as handle:
        lines = handle.read().splitlines()
    fields = [int(v) for v in lines[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    cores = sum(1 for line in lines if re.match(r"cpu\d+ ", line))
    return (sum(fields[:8]) - idle) / ticks, cores


def machine() -> dict[str, Any]:
    """The host as the report describes it: cores, CPU model, kernel."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count() or 1, "cpu_model": model, "kernel": platform.release()}


class CpuMeter:
    """Per-container CPU cores over a measured block; containers of other projects count as one."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.names: dict[str, str] = {}
        self.refresh()
        readable = all(container_usage(cid) is not None for cid in self.names)
        self.mode = "cgroup" if self.names and readable else "stats"

    def refresh(self) -> None:
        """Name every running container: its service-replica name in this project, OTHER otherwise."""
        out = run(
            ["docker", "ps", "--no-trunc", "--format", '{{.ID}}\t{{.Names}}\t{{.Label "com.docker.compose.project"}}']
        ).stdout
        self.names = {}
        for line in out.splitlines():
            cid, name, project = [*line.split("\t"), "", ""][:3]
            self.names[cid] = name.removeprefix(f"{self.project}-") if project == self.project else OTHER

    def sample(self) -> CpuSample:
        usage: dict[str, float] = {}
        throttle: dict[str, tuple[int, int]] = {}
        if self.mode == "cgroup":
            for cid in self.names:
                value = container_usage(cid)
                if value is not None:
                    usage[cid] = value
                periods = container_throttle(cid)
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
                if cid in before.throttle and self.names.get(cid) != OTHER:
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
            cmd = ["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.CPUPerc}}"]
            out = run(cmd, check=False, timeout=30).stdout
            totals: dict[str, float] = {}
            for line in out.splitlines():
                cid, _, perc = line.partition("\t")
                with contextlib.suppress(ValueError):
                    name = names.get(cid[:12], OTHER)
                    totals[name] = totals.get(name, 0.0) + float(perc.strip().rstrip("%")) / 100
            for name, value in totals.items():
                stats.setdefault(name, []).append(value)
