"""Liveness (/healthz) and readiness (/readyz) of this replica.

``/readyz`` is the compose healthcheck and the operators' view of one replica; nginx
does not expose it. It is 200 while Redis and a database answer: ``ok`` when everything
does, ``degraded`` when the replica is down (reads fall back to the primary), the primary
is down (read-only mode: reads go on from the replica, writes are refused) or the cache is
(misses go to the database); 503 ``down`` otherwise. So an orchestrator does not take a
replica that can still serve readers out of service.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app.services.probes import database_checks, probe_redis, timed

bp = Blueprint("health", __name__)

#: The replica is ready while each of these groups has a check that passes; the other failures only degrade it.
ESSENTIAL = (("db", "db_replica"), ("redis",))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive and serving; says nothing about its dependencies."""
    return jsonify(status="ok", replica=current_app.extensions["settings"].hostname)


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    primary, replica = database_checks()
    checks = {
        "db": primary,
        "db_replica": replica,
        "redis": timed(probe_redis(current_app.extensions["redis"])),
        "cache": timed(probe_redis(current_app.extensions["cache_redis"])),
    }
    if not all(any(checks[name]["ok"] for name in group) for group in ESSENTIAL):
        status, code = "down", 503
    elif all(check["ok"] for check in checks.values()):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return jsonify(status=status, replica=current_app.extensions["settings"].hostname, checks=checks), code
