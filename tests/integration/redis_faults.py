"""Faults injected into the real Redis for integration tests (plain helpers, no fixtures)."""

from __future__ import annotations

import redis

from tests.integration.support import admin_client
from tests.polling import wait_until


def _database(client: redis.Redis) -> str:
    return str(client.connection_pool.connection_kwargs.get("db", 0))


def kill_clients(url: str) -> int:
    """Close, from the server's side, every connection to ``url``'s Redis database but the one
    doing it, as a Redis restart closes every pooled connection; how many were closed.

    The test databases are the tests' own, so the running stack's clients are left alone."""
    killer = admin_client(url)
    try:
        me = killer.client_id()
        victims = [c["id"] for c in killer.client_list() if c["db"] == _database(killer) and int(c["id"]) != me]
        for victim in victims:
            killer.client_kill_filter(_id=victim)
        return len(victims)
    finally:
        killer.close()


def wait_for_blocked(url: str, command: str, timeout: float = 5.0) -> None:
    """Wait until a client of ``url``'s database is blocked in ``command`` (e.g. ``blpop``)."""
    observer = admin_client(url)
    try:
        wait_until(
            lambda: any(c["cmd"] == command and c["db"] == _database(observer) for c in observer.client_list()),
            timeout,
            interval=0.01,
            message=f"a client blocked in {command}",
        )
    finally:
        observer.close()
