"""What every replica and worker is doing, at a glance. Administrators only:
anonymous visitors get the login page, other users 403.

On top, graphs of the last 15 minutes or hour and the firing alerts, from Prometheus
(app.services.graphs); below, a live snapshot read from Redis and the databases. The snapshot
does not depend on Prometheus: when it is stopped, the page says so and shows the snapshot.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from app.identity import admin_required
from app.redis_clients import redis_client
from app.services import graphs, heartbeats, view_counts
from app.services.probes import database_checks
from app.services.prometheus import PrometheusClient
from app.web import charts

log = logging.getLogger(__name__)

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


def chart_of(data: graphs.PanelData, dashboard: graphs.Dashboard) -> dict[str, Any]:
    """A panel as the template shows it: title, what it shows, the SVG and its legend."""
    panel = data.panel
    lines = charts.lines_of((panel.name_of(series.labels), series.points) for series in data.series)
    return {
        "title": panel.title,
        "description": panel.description,
        "error": data.error,
        "svg": charts.render_chart(
            lines,
            start=dashboard.start,
            end=dashboard.end,
            step=dashboard.step,
            unit=panel.unit,
            title=f"{panel.title}, {dashboard.range.label.lower()}",
            message="The query failed (see below)" if data.error else charts.NO_DATA,
        ),
        "legend": charts.render_legend(lines, panel.unit),
    }


def monitoring(range_key: str | None) -> dict[str, Any]:
    """The graphs part of /ops: never raises, since the snapshot below it must still show."""
    url = current_app.extensions["settings"].prometheus_url
    chosen = graphs.time_range(range_key)
    view: dict[str, Any] = {"range": chosen, "ranges": list(graphs.RANGES.values())}
    if not url:
        return {**view, "off": True}
    try:
        dashboard = graphs.load_dashboard(PrometheusClient(url), chosen, time.time())
        charts_shown = [chart_of(data, dashboard) for data in dashboard.panels]
    except Exception as exc:  # a bug in the graphs must not cost the page its snapshot
        log.exception("the graphs of /ops failed")
        return {**view, "failed": f"{type(exc).__name__}: {exc}"}
    return {**view, "dashboard": dashboard, "charts": charts_shown}


@bp.get("/ops")
@admin_required
def index() -> ResponseReturnValue:
    return render_template("ops/index.html", state=stack_state(), monitoring=monitoring(request.args.get("range")))
