"""Liveness (/healthz) and readiness (/readyz) of this replica.

``/readyz`` is the compose healthcheck and the operators' view of one replica; nginx
does not expose it. It is 200 while the primary and Redis answer (the replica and the
cache only degrade the service: reads fall back to the primary, cache misses to the
database), 503 otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app import HOSTNAME
from app.database.wal import primary_lsn, replica_position
from app.extensions import db

bp = Blueprint("health", __name__)

Check = dict[str, Any]
#: Checks whose failure makes the replica unready; the others only degrade it.
ESSENTIAL = ("db", "redis")


def timed(probe: Callable[[], dict[str, Any]]) -> Check:
    started = time.perf_counter()
    try:
        result: Check = {"ok": True, **probe()}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
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


def probe_redis(extension: str) -> Callable[[], dict[str, Any]]:
    def ping() -> dict[str, Any]:
        current_app.extensions[extension].ping()
        return {}

    return ping


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive and serving; says nothing about its dependencies."""
    return jsonify(status="ok", replica=HOSTNAME)


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    primary = timed(probe_primary)
    checks = {
        "db": primary,
        "db_replica": timed(lambda: probe_replica(primary)),
        "redis": timed(probe_redis("redis")),
        "cache": timed(probe_redis("cache_redis")),
    }
    primary.pop("lsn_bytes", None)
    if not all(checks[name]["ok"] for name in ESSENTIAL):
        status, code = "down", 503
    elif all(check["ok"] for check in checks.values()):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return jsonify(status=status, replica=HOSTNAME, checks=checks), code
