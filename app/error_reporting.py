"""Error reports to Sentry, opt-in: set SENTRY_DSN.

Without a DSN nothing is initialised and the SDK is not even imported, so a deployment that does
not use Sentry pays nothing, at start or per request. With one, the web app (FlaskIntegration)
and the worker (CeleryIntegration; the worker builds its app through create_app too) report
unhandled exceptions and error logs, each tagged with the request id the JSON logs carry
(``request_id``: the request's own in web, the enqueuing request's in a task; app.logs), so an
event leads to every log line of the request and of the tasks it sent.

Personal data stays out: ``send_default_pii`` is left unset, which sentry-sdk (2.75, pinned)
treats as False (no cookies, user or client address; its event scrubber on). Set at all, even to
False, it warns: the option is deprecated there in favour of ``data_collection``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.logs import request_id_var

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

    from app.config import Settings


def tag_request_id(event: Event, _hint: Hint) -> Event:
    """``before_send``: Sentry calls it in the context of the failing request or task, where
    app.logs keeps the request id; an event from elsewhere (startup, beat) has none to carry."""
    rid = request_id_var.get()
    if rid:
        event.setdefault("tags", {})["request_id"] = rid
    return event


def init_error_reporting(settings: Settings, transport: Any = None) -> bool:
    """Start reporting errors to ``settings.sentry_dsn``; False (and nothing done) without one.

    ``transport`` replaces the SDK's HTTP transport (tests capture events with it). A traces
    sample rate of 0 turns tracing off altogether (None), rather than making spans it never sends.
    """
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        server_name=settings.hostname,
        traces_sample_rate=settings.sentry_traces_sample_rate or None,
        integrations=[FlaskIntegration(), CeleryIntegration()],
        before_send=tag_request_id,
        before_send_transaction=tag_request_id,
        transport=transport,
    )
    return True
