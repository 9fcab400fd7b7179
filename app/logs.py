"""JSON logs on stdout, each line carrying the request id (web) or task name and id (Celery)."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

#: The id of the HTTP request (from nginx's X-Request-ID) or of the request that enqueued a task.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
#: Celery task name and id while a task runs in this context.
task_var: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)

_HANDLER_NAME = "newsdesk-json"


class ContextFilter(logging.Filter):
    """Copy the request id and task identity from context variables onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        task = task_var.get()
        if task is not None:
            record.task_name, record.task_id = task
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON. Idempotent: safe to call per app."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    for existing in list(root.handlers):
        root.removeHandler(existing)
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    # Alembic announces its plugins at import; only migrations themselves are news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
