"""Celery signal handlers: request id propagation, JSON log context and liveness files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun, worker_ready

from app.logs import configure_logging, request_id_var, task_var

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


def connect(celery: Celery) -> None:
    celery.steps["worker"].add(Heartbeat)
