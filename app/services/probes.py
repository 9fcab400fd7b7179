"""Probes of this replica's dependencies, each timed: what /readyz answers and /ops shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from app.database import db
from app.database.wal import primary_lsn, replica_position
from app.services.errors import ReadOnly

Check = dict[str, Any]


def timed(probe: Callable[[], dict[str, Any]]) -> Check:
    """``probe()``'s result with ``ok`` and ``latency_ms``; an exception is ``ok: false`` with the error."""
    started = time.perf_counter()
    try:
        result: Check = {"ok": True, **probe()}
    except Exception as exc:
        # Under a ReadOnly, the primary's own error says more.
        shown = exc.__cause__ if isinstance(exc, ReadOnly) and exc.__cause__ is not None else exc
        result = {"ok": False, "error": f"{type(shown).__name__}: {shown}".strip()[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def probe_primary() -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {"lsn_bytes": primary_lsn(conn)}


def probe_replica(primary: Check) -> dict[str, Any]:
    with db.engines["replica"].connect() as conn:
        position = replica_position(conn)
    if not position.in_recovery:
        raise RuntimeError("db-replica is not in recovery: it is not a standby")
    lag_bytes = None
    if primary.get("ok") and position.replay_lsn is not None:
        lag_bytes = max(0, primary["lsn_bytes"] - position.replay_lsn)
    return {"lag_bytes": lag_bytes, "lag_seconds": round(position.lag_seconds, 3), "streaming": position.streaming}


def probe_redis(client: redis.Redis) -> Callable[[], dict[str, Any]]:
    def ping() -> dict[str, Any]:
        client.ping()
        return {}

    return ping


def database_checks() -> tuple[Check, Check]:
    """The primary's and the replica's checks (the replica's lag is measured against the primary)."""
    primary = timed(probe_primary)
    replica = timed(lambda: probe_replica(primary))
    primary.pop("lsn_bytes", None)
    return primary, replica
