"""Prometheus metrics shared by the web replicas and workers (multiprocess mode under gunicorn)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
