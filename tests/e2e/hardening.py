"""What every long-running container of the stack must look like (issue: hardened containers).

Read from `docker inspect` of the running containers, not from the compose file, so that a
setting compose dropped or an image overrode is caught too. Shared by the e2e suite (the core
services) and the monitoring suite (the profile's services).
"""

from __future__ import annotations

from typing import Any

from tests.e2e.stack import compose, inspect

#: Capabilities a service may keep after `cap_drop: [ALL]`, with the reason. None today: every
#: service starts as its own user on ports above 1024, so none needs one.
CAPABILITIES_KEPT: dict[str, set[str]] = {}
ROOT_USERS = {"", "0", "root", "0:0", "root:root"}


def running_containers() -> dict[str, list[dict[str, Any]]]:
    """The running containers of the project under test, by compose service."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for cid in compose("ps", "-q").stdout.split():
        details = inspect(cid)
        service = details["Config"]["Labels"]["com.docker.compose.service"]
        by_service.setdefault(service, []).append(details)
    return by_service


def hardening_problems(service: str, details: dict[str, Any]) -> list[str]:
    """Everything ``details`` (one container's `docker inspect`) lacks; empty when hardened."""
    host = details["HostConfig"]
    problems = []
    if not host.get("ReadonlyRootfs"):
        problems.append("root filesystem is writable (read_only: true)")
    dropped = {cap.upper().removeprefix("CAP_") for cap in host.get("CapDrop") or []}
    if "ALL" not in dropped:
        problems.append(f"capabilities not all dropped (cap_drop: [ALL]), dropped: {sorted(dropped)}")
    added = {cap.upper().removeprefix("CAP_") for cap in host.get("CapAdd") or []}
    extra = added - CAPABILITIES_KEPT.get(service, set())
    if extra:
        problems.append(f"keeps capabilities it was not granted here: {sorted(extra)}")
    if not any(opt.replace("=", ":") == "no-new-privileges:true" for opt in host.get("SecurityOpt") or []):
        problems.append("no `no-new-privileges:true` security option")
    if not host.get("Memory"):
        problems.append("no memory limit (mem_limit)")
    if host.get("Privileged"):
        problems.append("privileged")
    if (details["Config"].get("User") or "") in ROOT_USERS:
        problems.append("runs as root (no `user:` and the image's default user is root)")
    return problems


def assert_hardened(services: set[str]) -> None:
    """Every running container of ``services`` is hardened; each of them runs at least once."""
    running = running_containers()
    missing = services - running.keys()
    assert not missing, f"not running, so not checked: {sorted(missing)}"
    report = {
        f"{service} ({details['Name'].lstrip('/')})": problems
        for service in sorted(services)
        for details in running[service]
        if (problems := hardening_problems(service, details))
    }
    assert not report, "containers without the hardening the README's table promises:\n" + "\n".join(
        f"  {name}: {'; '.join(problems)}" for name, problems in report.items()
    )
