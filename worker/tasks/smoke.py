"""Smoke tasks: ``ping`` proves a message travels web -> broker -> worker -> result backend;
``sleep`` is a slow task whose worker can be killed under it, to watch it be redelivered to
another worker and complete there (``flask tasks smoke --seconds N --wait S``)."""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import asdict
from typing import Any

from celery import shared_task
from flask import current_app

from app import task_names
from app.config import TASK_SOFT_TIME_LIMIT
from app.services import smoke

log = logging.getLogger(__name__)


@shared_task(name=task_names.SMOKE_PING)
def ping(payload: str = "") -> dict[str, str]:
    log.info("smoke task ran")
    return {"worker": socket.gethostname(), "payload": payload}


@shared_task(name=task_names.SMOKE_SLEEP, bind=True, acks_late=True, reject_on_worker_lost=True)
def sleep(self, seconds: float) -> dict[str, Any]:  # noqa: ANN001 - bound task
    """Sleep ``seconds``, then record the completion (once per task id, see app.services.smoke).

    Acknowledged only once done (as every task is, stated here because it is the point): if the
    worker dies meanwhile, the task is redelivered and sleeps again from the start elsewhere."""
    if not 0 <= seconds < TASK_SOFT_TIME_LIMIT:
        raise ValueError(f"seconds must be in [0, {TASK_SOFT_TIME_LIMIT}), got {seconds}")
    log.info("smoke sleep started", extra={"smoke_seconds": seconds})
    time.sleep(seconds)
    done = smoke.record_completion(
        current_app.extensions["redis"], self.request.id, current_app.extensions["settings"].hostname
    )
    log.info("smoke sleep completed", extra={"smoke_worker": done.worker})
    return asdict(done)
