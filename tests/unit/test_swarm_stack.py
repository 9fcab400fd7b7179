"""deploy/swarm/stack.yml against docker-compose.yml: they must not drift apart unnoticed.

Both files are read as YAML (anchors and merge keys resolved, nothing interpolated: the
``${VAR...}`` expressions are compared as written, so a changed default shows too). For every
service the two share: the image variable, the environment's names, the command and entrypoint,
the healthcheck, the user, the hardening and the mount targets must match, except for the
differences listed in INTENDED below, each with its reason. A service in compose that the stack
lacks (or the reverse) fails unless it is listed in COMPOSE_ONLY. When this test fails after a
change to docker-compose.yml, carry the change into the stack file (or add the difference here,
with its reason). The stack file is also checked against what 20.10's `docker stack deploy`
accepts (the compose file format 3.8 keys, Swarm-only settings); `make swarm-test` deploys it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
STACK = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yml").read_text())

# Services of docker-compose.yml that the Swarm stack does not carry, and why.
COMPOSE_ONLY = {
    # profile-only: monitoring (its Swarm version is future work), test, loadtest and bench tools
    "prometheus": "profile monitoring",
    "alertmanager": "profile monitoring",
    "alert-log": "profile monitoring",
    "postgres-exporter": "profile monitoring",
    "postgres-exporter-replica": "profile monitoring",
    "redis-exporter": "profile monitoring",
    "cache-exporter": "profile monitoring",
    "flower": "profile monitoring",
    "test": "profile test",
    "locust-master": "profile loadtest",
    "locust-worker": "profile loadtest",
    "bench-hello": "profile bench",
    "bench-client": "profile bench",
    # 20.10 rejects jobs in stack files: it is the stack's x-migrate, run by tools/swarm/deploy.py
    # as `docker service create --mode replicated-job` before `docker stack deploy`.
    "migrate": "x-migrate",
}

# Passwords are Docker secrets: compose's NAME is the stack's NAME_FILE (/run/secrets/...).
SECRET_VARIABLES = {
    "SECRET_KEY",
    "POSTGRES_PASSWORD",
    "APP_DB_PASSWORD",
    "MONITOR_PASSWORD",
    "REPLICATION_PASSWORD",
    "REDIS_PASSWORD",
    "REDIS_APP_PASSWORD",
    "REDIS_BROKER_PASSWORD",
    "CACHE_PASSWORD",
}

# Per service and aspect, the intended differences (checked to still be differences, so that a
# stale entry is noticed too).
INTENDED: dict[tuple[str, str], str] = {
    # REDISCLI_AUTH carries the password in compose; the stack's healthcheck reads the secret file.
    ("redis", "environment"): "REDISCLI_AUTH dropped",
    ("cache", "environment"): "REDISCLI_AUTH dropped",
    ("redis", "healthcheck"): "REDISCLI_AUTH from /run/secrets",
    ("cache", "healthcheck"): "REDISCLI_AUTH from /run/secrets",
}
# Aspects that differ for every service by design, not compared:
#   build               stack deploy ignores it: images come from a registry
#   restart             deploy.restart_policy
#   mem_limit, cpus     deploy.resources.limits (cpus: WEB_CPUS is make bench's, not carried)
#   security_opt        no-new-privileges: ignored by 20.10's stack deploy (recorded in the README)
#   shm_size            not supported by Swarm services
#   depends_on          no ordering in Swarm: the migration job runs first, the app retries
#   env_file            compose: .env; stack: .env without the secrets (SWARM_ENV_FILE)
#   ports               compose: 127.0.0.1-bound; stack: host mode on the edge node
#   tmpfs               stack files cannot set uid/mode: long-syntax tmpfs volumes (targets compared)
#   init, hostname      the stack adds init: true to the app (Python as PID 1) and task hostnames

# Mounted in the stack only (none today).
STACK_ONLY_MOUNTS: set[str] = set()

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def shared_services() -> list[str]:
    return sorted(set(COMPOSE["services"]) & set(STACK["services"]))


def image_variable(service: dict[str, Any]) -> str:
    match = _VAR.search(str(service.get("image", "")))
    return match.group(1) if match else str(service.get("image"))


def environment(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    if not isinstance(env, dict):
        env = dict(item.split("=", 1) for item in env)
    # Compose blanks the passwords of .env (its env_file) a service must not hold; the stack's
    # env_file has no passwords at all, so it has nothing to blank.
    names = {name for name, value in env.items() if not (name in SECRET_VARIABLES and value == "")}
    return {f"{name}_FILE" if name in SECRET_VARIABLES else name for name in names}


def mount_targets(service: dict[str, Any]) -> set[str]:
    """Where files and volumes appear in the container: volumes, tmpfs, configs and secrets."""
    targets: set[str] = set()
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            targets.add(volume["target"])
        else:  # short syntax: SOURCE:TARGET[:MODE], the source possibly ${VAR:-default}
            targets.add(re.sub(r"\$\{[^}]*\}", "X", volume).split(":")[1])
    for tmpfs in service.get("tmpfs") or []:
        targets.add(tmpfs.split(":")[0])
    for kind in ("configs", "secrets"):
        for item in service.get(kind) or []:
            if isinstance(item, dict) and item.get("target", "").startswith("/"):
                targets.add(item["target"])
    return targets


def aspects(service: dict[str, Any]) -> dict[str, object]:
    return {
        "image": image_variable(service),
        "environment": environment(service),
        "command": service.get("command"),
        "entrypoint": service.get("entrypoint"),
        "healthcheck": service.get("healthcheck"),
        "user": service.get("user"),
        "read_only": service.get("read_only"),
        "cap_drop": service.get("cap_drop"),
        "stop_signal": service.get("stop_signal"),
        "stop_grace_period": service.get("stop_grace_period"),
    }


def test_every_compose_service_is_in_the_stack_or_listed_as_compose_only() -> None:
    missing = set(COMPOSE["services"]) - set(STACK["services"]) - set(COMPOSE_ONLY)
    assert not missing, f"in docker-compose.yml, not in deploy/swarm/stack.yml: {sorted(missing)}"
    extra = set(STACK["services"]) - set(COMPOSE["services"])
    assert not extra, f"in the stack, not in docker-compose.yml: {sorted(extra)}"
    stale = set(COMPOSE_ONLY) - set(COMPOSE["services"])
    assert not stale, f"COMPOSE_ONLY names services compose no longer has: {sorted(stale)}"


@pytest.mark.parametrize("name", shared_services())
def test_a_service_is_the_same_in_both_files_but_for_the_intended_differences(name: str) -> None:
    compose, stack = aspects(COMPOSE["services"][name]), aspects(STACK["services"][name])
    if COMPOSE["services"][name].get("env_file"):
        # The app's secrets reach compose's containers through env_file (.env); the stack names
        # their files explicitly (its env_file has .env without them).
        assert isinstance(stack["environment"], set)
        stack["environment"] -= {f"{variable}_FILE" for variable in SECRET_VARIABLES}
    for aspect, value in compose.items():
        if (name, aspect) in INTENDED:
            assert value != stack[aspect], f"{name}.{aspect} is listed as intended but no longer differs"
            continue
        assert stack[aspect] == value, f"{name}.{aspect}: compose {value!r}, stack {stack[aspect]!r}"


@pytest.mark.parametrize("name", shared_services())
def test_what_compose_mounts_the_stack_mounts_at_the_same_place(name: str) -> None:
    compose, stack = mount_targets(COMPOSE["services"][name]), mount_targets(STACK["services"][name])
    # A directory compose mounts whole is mounted file by file in the stack (configs; nginx's
    # /var/cache/nginx per temporary directory, see stack.yml): a file inside it counts as it.
    stack = {next((c for c in compose if t.startswith(c + "/")), t) for t in stack} - STACK_ONLY_MOUNTS
    assert compose == stack, (
        f"{name}: only in compose {sorted(compose - stack)}, only in the stack {sorted(stack - compose)}"
    )


def test_the_migration_job_is_compose_s_migrate() -> None:
    compose, job = COMPOSE["services"]["migrate"], STACK["x-migrate"]
    assert job["command"] == compose["command"]
    assert image_variable(job) == image_variable(compose)
    assert environment(job) >= environment(compose)


def test_every_password_reaches_the_stack_as_a_secret_file() -> None:
    for name, service in STACK["services"].items():
        env = service.get("environment") or {}
        for variable in env:
            assert variable not in SECRET_VARIABLES, f"{name}: {variable} in clear; use {variable}_FILE and a secret"
        for variable, value in env.items():
            if variable.endswith("_FILE") and variable.removesuffix("_FILE") in SECRET_VARIABLES:
                secret = value.removeprefix("/run/secrets/")
                assert secret in (service.get("secrets") or []), f"{name}: {variable} names a secret it does not mount"


# --- the stack file as 20.10's `docker stack deploy` reads it (compose file format 3.8) --------
SERVICE_KEYS = {
    "deploy", "build", "cap_add", "cap_drop", "cgroup_parent", "command", "configs", "container_name",
    "credential_spec", "depends_on", "devices", "dns", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "external_links", "extra_hosts", "healthcheck", "hostname", "image", "init", "ipc",
    "isolation", "labels", "links", "logging", "mac_address", "network_mode", "networks", "pid", "ports",
    "privileged", "read_only", "restart", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode", "volumes", "working_dir",
}  # fmt: skip
# Accepted by the format but ignored (or refused) by stack deploy: they would only mislead.
IGNORED_BY_SWARM = {"build", "depends_on", "restart", "security_opt", "shm_size", "tmpfs", "container_name", "links"}
DEPLOY_KEYS = {"endpoint_mode", "labels", "mode", "placement", "replicas", "resources", "restart_policy",
               "rollback_config", "update_config"}  # fmt: skip


def test_the_stack_file_uses_only_what_stack_deploy_honours() -> None:
    assert STACK["version"] == "3.8"
    assert set(STACK) - {"version", "services", "networks", "volumes", "secrets", "configs"} <= {
        key for key in STACK if key.startswith("x-")
    }
    for name, service in STACK["services"].items():
        unknown = set(service) - SERVICE_KEYS
        assert not unknown, f"{name}: not in the 3.8 format: {sorted(unknown)}"
        ignored = set(service) & IGNORED_BY_SWARM
        assert not ignored, f"{name}: ignored by docker stack deploy: {sorted(ignored)}"
        deploy = service["deploy"]
        assert set(deploy) <= DEPLOY_KEYS, f"{name}: deploy keys {sorted(set(deploy) - DEPLOY_KEYS)}"
        assert deploy["mode"] != "replicated-job" if "mode" in deploy else True
        # No VIPs (no IPVS on some kernels; nginx resolves every task itself).
        assert deploy["endpoint_mode"] == "dnsrr", name
        assert deploy["restart_policy"]["condition"] == "any", name
        assert "memory" in deploy["resources"]["limits"], name
        for port in service.get("ports") or []:
            assert isinstance(port, dict) and port["mode"] == "host", (
                f"{name}: publish in host mode (dnsrr has no mesh)"
            )
        for config in service.get("configs") or []:
            assert config["source"] in STACK["configs"], f"{name}: unknown config {config['source']}"
        for secret in service.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in STACK["secrets"], f"{name}: unknown secret {source}"
        if "healthcheck" in COMPOSE["services"].get(name, {}):
            assert "healthcheck" in service, name


def test_rolling_updates_start_first_and_roll_back_where_two_tasks_may_coexist() -> None:
    for name in ("web", "worker"):
        update = STACK["services"][name]["deploy"]["update_config"]
        assert update["order"] == "start-first" and update["failure_action"] == "rollback", name
    for name in ("db", "db-replica", "beat", "redis", "backup"):
        assert STACK["services"][name]["deploy"]["update_config"]["order"] == "stop-first", name
        assert STACK["services"][name]["deploy"]["replicas"] == 1, name


def test_stateful_services_are_pinned_to_labelled_nodes() -> None:
    def constraints(name: str) -> list[str]:
        return STACK["services"][name]["deploy"].get("placement", {}).get("constraints", [])

    assert constraints("db") == ["node.labels.newsdesk.db == true"]
    assert constraints("db-replica") == ["node.labels.newsdesk.db-replica == true"]
    assert constraints("backup") == constraints("redis") == constraints("db")
    assert constraints("nginx") == ["node.labels.newsdesk.edge == true"]


def test_every_config_file_exists() -> None:
    for name, config in STACK["configs"].items():
        assert (ROOT / "deploy" / "swarm" / config["file"]).is_file(), name
