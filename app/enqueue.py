"""Sending background tasks from the web: by name (app.task_names), after commit, never
failing the request."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from app.database import on_commit
from app.logs import request_id_var

log = logging.getLogger(__name__)


def enqueue(name: str, *args: Any, **kwargs: Any) -> str | None:
    """Send task ``name`` now; return its id, or None when the broker could not take it.

    A write has already been committed when this runs; a broker outage must not turn it
    into a 500. The failure is logged (with the request id) for an operator to act on.
    """
    celery = current_app.extensions["celery"]
    try:
        result = celery.send_task(
            name,
            args=args,
            kwargs=kwargs,
            headers={"request_id": request_id_var.get()},
            retry=True,
            retry_policy={"max_retries": 2},
        )
    except Exception:
        log.exception("could not enqueue task %s", name, extra={"task_args": repr(args)[:200]})
        return None
    return result.id


def enqueue_after_commit(name: str, *args: Any, **kwargs: Any) -> None:
    """Send task ``name`` once the current transaction commits (never for a rollback)."""
    on_commit(enqueue, name, *args, **kwargs)
