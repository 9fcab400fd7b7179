"""The stack's containers are hardened, and its Redis servers refuse clients without a password."""

from __future__ import annotations

import json

import pytest

from tests.e2e.hardening import assert_hardened, hardening_problems
from tests.e2e.stack import compose

#: The long-running services of a plain `make up` (one-shot `migrate` exits; profiles elsewhere).
CORE_SERVICES = {
    "nginx", "web", "worker", "beat", "db", "db-replica", "backup", "redis", "cache", "pgbouncer", "pgbouncer-replica",
}  # fmt: skip


def test_every_long_running_service_is_hardened(stack: str) -> None:
    assert_hardened(CORE_SERVICES)


def test_every_service_of_the_stack_is_checked() -> None:
    # A service added to the stack (outside a profile) must be added to CORE_SERVICES.
    services = json.loads(compose("config", "--format", "json").stdout)["services"]
    assert {name for name, svc in services.items() if not svc.get("profiles")} == CORE_SERVICES | {"migrate"}


def test_the_check_catches_a_container_without_hardening(stack: str) -> None:
    # What a container started without the compose settings looks like.
    details = {
        "Name": "/probe",
        "HostConfig": {"ReadonlyRootfs": False, "CapDrop": None, "CapAdd": ["NET_ADMIN"], "SecurityOpt": None},
        "Config": {"User": ""},
    }
    problems = " ".join(hardening_problems("probe", details))
    for expected in ("writable", "cap_drop", "NET_ADMIN", "no-new-privileges", "memory", "root"):
        assert expected in problems


@pytest.mark.parametrize("service", ["redis", "cache"])
def test_redis_refuses_clients_without_the_password(stack: str, service: str) -> None:
    anonymous = compose("exec", "-T", "-e", "REDISCLI_AUTH=", service, "redis-cli", "ping", check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    wrong = compose("exec", "-T", "-e", "REDISCLI_AUTH=wrong", service, "redis-cli", "ping", check=False)
    assert "PONG" not in wrong.stdout
    assert "PONG" in compose("exec", "-T", service, "redis-cli", "ping").stdout


def test_the_apps_redis_users_cannot_run_admin_commands(stack: str) -> None:
    script = (
        "import redis, sys\n"
        "from app.config import Settings\n"
        "settings = Settings.from_env()\n"
        "for url in (settings.redis_url, settings.broker_url):\n"
        "    client = redis.Redis.from_url(url)\n"
        "    assert client.ping()\n"
        "    for command in (('FLUSHALL',), ('CONFIG', 'GET', 'maxmemory'), ('SHUTDOWN',)):\n"
        "        try:\n"
        "            client.execute_command(*command)\n"
        "        except redis.exceptions.NoPermissionError:\n"
        "            continue\n"
        "        sys.exit(f'{client.connection_pool.connection_kwargs[\"username\"]} may run {command}')\n"
        "print('ok')\n"
    )
    assert compose("exec", "-T", "web", "python", "-c", script).stdout.strip() == "ok"
