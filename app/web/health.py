"""Liveness (/healthz) and readiness (/readyz) of this replica.

``/readyz`` is the compose healthcheck and the operators' view of one replica; nginx
does not expose it. It is 200 while the primary and Redis answer (the replica and the
cache only degrade the service: reads fall back to the primary, cache misses to the
database), 503 otherwise.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app.services.probes import database_checks, probe_redis, timed

bp = Blueprint("health", __name__)

#: Checks whose failure makes the replica unready; the others only degrade it.
ESSENTIAL = ("db", "redis")


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
    if not all(checks[name]["ok"] for name in ESSENTIAL):
        status, code = "down", 503
    elif all(check["ok"] for check in checks.values()):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return jsonify(status=status, replica=current_app.extensions["settings"].hostname, checks=checks), code
