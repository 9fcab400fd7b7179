"""Celery signal handlers: request id propagation, JSON log context, liveness files and the
metrics of worker.metrics (task counts and durations; the endpoints of workers and beat)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from celery import Celery, bootsteps
from celery.signals import (
    beat_init,
    before_task_publish,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)

from app.logs import configure_logging, request_id_var, task_var
from app.redis_clients import redis_client
from worker import metrics

#: Touched while the worker's consumer is alive; the compose healthcheck reads its age.
WORKER_HEARTBEAT = Path("/tmp/worker-heartbeat")
HEARTBEAT_SECONDS = 5.0

log = logging.getLogger(__name__)
#: Attribute of a task's request (one per execution) holding its context-variable tokens.
_TOKENS = "newsdesk_context_tokens"


def alive() -> None:
    """The worker's pulse: the healthcheck file, and its entry in the stack-wide heartbeats."""
    from app.services import heartbeats
    from worker import flask_app

    WORKER_HEARTBEAT.touch()
    heartbeats.beat(flask_app.extensions["redis"], heartbeats.WORKERS, flask_app.extensions["settings"].hostname)


@setup_logging.connect
def keep_json_logging(loglevel: Any = None, **_: Any) -> None:
    """Connected, so Celery leaves logging to us: the same JSON lines as the web replicas."""
    configure_logging(loglevel if isinstance(loglevel, str) else "INFO")


@before_task_publish.connect
def attach_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Carry the id of the request (or task) that enqueues this task in its headers."""
    rid = request_id_var.get()
    if headers is not None and rid and "request_id" not in headers:
        headers["request_id"] = rid


@task_prerun.connect
def bind_task_context(task_id: str, task: Any, **_: Any) -> None:
    rid = getattr(task.request, "request_id", None)
    setattr(task.request, _TOKENS, (request_id_var.set(rid), task_var.set((task.name, task_id))))


@task_postrun.connect
def unbind_task_context(task: Any, **_: Any) -> None:
    tokens = getattr(task.request, _TOKENS, None)
    if tokens is not None:
        setattr(task.request, _TOKENS, None)
        request_id_var.reset(tokens[0])
        task_var.reset(tokens[1])


@task_prerun.connect
def start_task_metrics(task: Any, **_: Any) -> None:
    metrics.task_started(task)


@task_postrun.connect
def end_task_metrics(task: Any, **_: Any) -> None:
    metrics.task_ended(task)


@task_success.connect
def count_success(sender: Any, **_: Any) -> None:
    metrics.count_outcome(sender, "succeeded")


@task_failure.connect
def count_failure(sender: Any, **_: Any) -> None:
    metrics.count_outcome(sender, "failed")


@task_retry.connect
def count_retry(sender: Any, **_: Any) -> None:
    metrics.count_outcome(sender, "retried")


@worker_init.connect
def reset_metrics(**_: Any) -> None:
    """In the worker's main process, before it forks its pool: this run's counts only."""
    metrics.reset_multiprocess_dir()


@worker_process_shutdown.connect
def forget_pool_process(pid: int, **_: Any) -> None:
    metrics.forget_process(pid)


@beat_init.connect
def serve_beat_metrics(sender: Any, **_: Any) -> None:
    """beat's endpoint: when its scheduler last ticked (worker.beat.HeartbeatScheduler)."""
    from worker import flask_app

    settings = flask_app.extensions["settings"]
    scheduler = sender.scheduler
    registry = metrics.beat_registry(lambda: getattr(scheduler, "last_tick_at", None), settings.hostname)
    metrics.serve(settings.worker_metrics_port, registry)


@worker_ready.connect
def mark_ready(**_: Any) -> None:
    WORKER_HEARTBEAT.touch()
    log.info("worker ready")


class Heartbeat(bootsteps.StartStopStep):
    """Touch WORKER_HEARTBEAT every few seconds from the consumer's timer."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **_: Any) -> None:
        self.tref = None

    def start(self, worker: Any) -> None:
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_SECONDS, alive, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


class MetricsServer(bootsteps.StartStopStep):
    """The worker's metrics endpoint (worker.metrics), served once, by the main process: its
    pool children only write their counts to PROMETHEUS_MULTIPROC_DIR."""

    def __init__(self, worker: Any, **_: Any) -> None:
        self.server: WSGIServer | None = None

    def start(self, worker: Any) -> None:
        from worker import flask_app

        settings = flask_app.extensions["settings"]
        broker = redis_client(settings.broker_url, retries=0)  # a scrape fails fast, never waits
        registry = metrics.worker_registry(broker, metrics.queue_names(worker.app.conf), settings.hostname)
        self.server = metrics.serve(settings.worker_metrics_port, registry)

    def stop(self, worker: Any) -> None:
        if self.server is not None:
            metrics.stop(self.server)
            self.server = None


def connect(celery: Celery) -> None:
    celery.steps["worker"].add(Heartbeat)
    celery.steps["worker"].add(MetricsServer)
