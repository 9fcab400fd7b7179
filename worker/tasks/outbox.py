"""Outbox tasks: the relay that publishes what the broker could not take at commit time, and
the purge of published rows (see app.services.outbox)."""

from __future__ import annotations

from celery import shared_task

from app import task_names
from app.services import outbox

#: A tick that waited past its expiry (broker down) is dropped: the next one does the same work.
BEAT_SCHEDULE = {
    "outbox-relay": {"task": task_names.RELAY_OUTBOX, "schedule": 2.0, "options": {"expires": 10}},
    # A bounded batch a minute: far more than the write rate, and cheap when there is nothing to do.
    "outbox-purge": {"task": task_names.PURGE_OUTBOX, "schedule": 60.0, "options": {"expires": 60}},
}


@shared_task(name=task_names.RELAY_OUTBOX, ignore_result=True)
def relay() -> int:
    """Publish the outbox rows still unpublished a few seconds after their commit."""
    return outbox.relay()


@shared_task(name=task_names.PURGE_OUTBOX, ignore_result=True)
def purge() -> int:
    """Delete outbox rows published longer ago than the retention."""
    return outbox.purge()
