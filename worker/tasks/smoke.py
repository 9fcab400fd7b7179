"""A smoke task: proves a message travels web -> broker -> worker -> result backend."""

from __future__ import annotations

import logging
import socket

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="smoke.ping")
def ping(payload: str = "") -> dict[str, str]:
    log.info("smoke task ran")
    return {"worker": socket.gethostname(), "payload": payload}
