"""Gunicorn settings for the `web` service. Every setting comes from the environment.

Monkey-patching happens in app/wsgi.py, the first module each worker imports (and
gunicorn's gevent worker patches before loading it too). The app is not preloaded:
each worker process builds its own app, engines and pools after fork, so no socket
is ever shared between processes.
"""

from __future__ import annotations

import logging
import os
import shutil

from gunicorn.glogging import Logger


def _int(name: str, default: int, lo: int, hi: int) -> int:
    raw = os.environ.get(name, "").strip()
    value = int(raw) if raw else default
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is outside {lo}..{hi}")
    return value


# Address inside the container; nginx reaches every replica on port 8000. (any host:port)
bind = f"0.0.0.0:{_int('PORT', 8000, 1, 65535)}"
# Worker processes per replica, 1..32. With gevent one process serves many requests at once;
# scale with replicas (`--scale web=N`) first, and match workers to the CPUs a replica gets.
workers = _int("GUNICORN_WORKERS", 2, 1, 32)
worker_class = "gevent"
# Concurrent greenlets (open client connections) per worker, 10..10000.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000, 10, 10000)
# Recycle a worker after this many requests, 0 (never)..10,000,000, with random jitter
# 0..max_requests so that replicas do not all restart together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 20000, 0, 10_000_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 2000, 0, 10_000_000)
# Seconds a worker may be silent before the arbiter kills it, 5..600.
timeout = _int("GUNICORN_TIMEOUT", 30, 5, 600)
# Seconds to finish in-flight requests after SIGTERM, 1..300; keep it below compose's
# stop_grace_period (30 s) so the shutdown is graceful rather than SIGKILLed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20, 1, 300)
# Seconds an idle keep-alive connection stays open, 1..600. Longer than nginx's upstream
# keepalive_timeout (60 s), so that nginx, not gunicorn, closes idle connections.
keepalive = _int("GUNICORN_KEEPALIVE", 75, 1, 600)
# Pending connections the kernel queues, 64..65535.
backlog = _int("GUNICORN_BACKLOG", 2048, 64, 65535)
# Heartbeat files on tmpfs: a container's overlay filesystem can stall the arbiter's checks.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# nginx writes the access log (JSON, with the request id); gunicorn logs errors only.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


class JsonLogger(Logger):
    """Gunicorn's logger, but with a logconfig_dict it formats an access line for every
    request even when the access logger drops it: skip that work unless it is wanted."""

    def access(self, resp, req, environ, request_time) -> None:  # noqa: ANN001
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


logger_class = JsonLogger
proc_name = "newsdesk-web"
# gunicornc's control socket; the default ($HOME/.gunicorn) is not writable for the app user.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "/tmp/gunicorn.ctl")
preload_app = False
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # The same JSON lines as the app's own (app.logs); that module imports no more of the app.
    "formatters": {"json": {"()": "app.logs.json_formatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": loglevel.upper(), "propagate": False},
        # With a logconfig_dict gunicorn always emits access lines; keep them off unless asked.
        "gunicorn.access": {"handlers": ["stdout"], "level": "INFO" if accesslog else "WARNING", "propagate": False},
    },
}


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn server hook
    """Fresh Prometheus multiprocess directory for this master's workers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn server hook
    """A recycled worker's live gauges must not be summed forever."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_int(worker) -> None:  # noqa: ANN001 - gunicorn server hook
    """With ``--reload`` (make dev): a changed file ends the worker at once.

    Gunicorn would let it finish gracefully, serving nginx's open keep-alive connections with
    the old code for GUNICORN_GRACEFUL_TIMEOUT, then tear the interpreter down: seconds before the
    new code is served. Development only (``reload`` is never on in production); the views this
    process counted in its last second are not sent."""
    if worker.cfg.reload:
        os._exit(0)


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn server hook
    """A response's head leaves with its body in one send (app.http_response says why)."""
    from app import http_response

    http_response.install()
