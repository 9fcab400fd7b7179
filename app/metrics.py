"""Prometheus metrics shared by the web replicas and workers (multiprocess mode under gunicorn)."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_LATENCY = Histogram(
    "newsdesk_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint, method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_READS = Counter(
    "newsdesk_db_reads",
    "Read transactions routed to the primary or the replica, and why.",
    ["target", "reason"],
)
CACHE_REQUESTS = Counter(
    "newsdesk_cache_requests",
    "Lookups in the shared cache.",
    ["result"],
)
#: 1 per process, naming its container: Prometheus discovers targets by address, graphs and
#: alerts name them by hostname (``* on(instance) group_left(hostname) newsdesk_process_info``).
PROCESS_INFO = Gauge(
    "newsdesk_process_info",
    "The container (hostname) and role (web, worker, beat) of this metrics endpoint.",
    ["hostname", "role"],
    multiprocess_mode="max",
)
OUTBOX_SENDS = Counter(
    "newsdesk_outbox_sends",
    "Outbox rows sent to the broker right after their commit or by the relay, and whether the broker took them.",
    ["via", "result"],
)


def init_metrics(app: Flask) -> None:
    """Time every request, and serve `/metrics` (per replica; nginx does not expose it).

    Under gunicorn each worker process writes its samples to PROMETHEUS_MULTIPROC_DIR and
    `/metrics` aggregates every process's files, so the numbers are the replica's, not the
    one worker's that happened to answer (gunicorn_config.py clears the directory at start
    and marks dead workers).
    """
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        os.makedirs(multiproc_dir, exist_ok=True)

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("request_started", None)
        if started is not None:
            endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
            REQUEST_LATENCY.labels(endpoint, request.method, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response

    hostname = app.extensions["settings"].hostname

    @app.get("/metrics")
    def metrics() -> Response:
        PROCESS_INFO.labels(hostname, "web").set(1)
        if multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
