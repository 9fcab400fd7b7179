"""What every replica and worker is doing, at a glance. Administrators only:
anonymous visitors get the login page, other users 403."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from app.identity import admin_required
from app.redis_clients import redis_client
from app.services import heartbeats, view_counts
from app.services.probes import database_checks

bp = Blueprint("ops", __name__)

QUEUES = ("default",)


def queue_lengths() -> dict[str, Any]:
    settings = current_app.extensions["settings"]
    broker = redis_client(settings.broker_url, settings.redis_retries)
    try:
        lengths: dict[str, Any] = {name: broker.llen(name) for name in QUEUES}
        lengths["unacked (running or reserved)"] = broker.hlen("unacked")
        return lengths
    except redis.RedisError as exc:
        return {"error": str(exc)}
    finally:
        broker.close()


def cache_stats() -> dict[str, Any]:
    try:
        info = current_app.extensions["cache_redis"].info("stats")
        memory = current_app.extensions["cache_redis"].info("memory")
    except redis.RedisError as exc:
        return {"error": str(exc)}
    hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
    return {
        "hits": hits,
        "misses": misses,
        "hit_ratio": round(hits / (hits + misses), 3) if hits + misses else None,
        "evicted_keys": info.get("evicted_keys", 0),
        "used_memory": memory.get("used_memory_human"),
    }


def stack_state() -> dict[str, Any]:
    client = current_app.extensions["redis"]
    try:
        replicas = heartbeats.seen(client, heartbeats.REPLICAS)
        workers = heartbeats.seen(client, heartbeats.WORKERS)
        pending_views = client.hlen(view_counts.PENDING)
    except redis.RedisError as exc:
        replicas, workers, pending_views = [], [], f"unknown ({exc})"
    primary, replica = database_checks()
    router = current_app.extensions["db_router"]
    return {
        "this_replica": current_app.extensions["settings"].hostname,
        "replicas": replicas,
        "workers": workers,
        "queues": queue_lengths(),
        "pending_views": pending_views,
        "primary": primary,
        "replica": replica,
        "replica_skipped": router.monitor.position() is None,
        "cache": cache_stats(),
        "seen_within": heartbeats.SEEN_WITHIN,
    }


@bp.get("/ops")
@admin_required
def index() -> ResponseReturnValue:
    return render_template("ops/index.html", state=stack_state())
