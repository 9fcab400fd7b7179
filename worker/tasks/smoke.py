"""A smoke task: proves a message travels web -> broker -> worker -> result backend."""

from __future__ import annotations

import logging
import socket

from celery import shared_task

from app import task_names

log = logging.getLogger(__name__)


@shared_task(name=task_names.SMOKE_PING)
def ping(payload: str = "") -> dict[str, str]:
    log.info("smoke task ran")
    return {"worker": socket.gethostname(), "payload": payload}
