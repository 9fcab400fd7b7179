"""HTML error pages for the site, leaving every /api/ error to the API's handlers.

Flask calls exactly one handler per error, chosen by status code before class: a handler
registered for 404 wins over one registered for ``HTTPException`` (or for ``Exception``),
whatever the registration order. So a page handler cannot simply "pass" an API error on
by returning or re-raising it: returning it renders Werkzeug's default HTML page, and
re-raising it turns it into a 500. Instead, for a path under /api/ it looks up the
handler Flask would have chosen had the page handlers not been registered (the API's
problem+json handlers, on the app or on the API blueprint) and calls that one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import Forbidden as ForbiddenPage
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.exceptions import NotFound as NotFoundPage

from app.api.problems import http_problem, is_api_path, read_only_problem
from app.database import db
from app.identity import load_session_user
from app.services.errors import Forbidden, NotFound, ReadOnly

log = logging.getLogger(__name__)

#: Status code -> (title, what the reader can do about it).
PAGE_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood. Please go back and try again."),
    403: ("Not allowed", "You do not have permission to do this."),
    404: ("Page not found", "There is nothing here. The article may have been deleted, or the link is wrong."),
    405: ("Method not allowed", "This page cannot be used that way."),
    413: ("Too large", "What you sent is larger than this site accepts."),
    429: ("Too many attempts", "Please wait a minute before you try again."),
    500: ("Something went wrong", "The error has been logged. Please try again in a moment."),
}
CSRF_EXPIRED = (
    "Form expired",
    "This form has expired or was opened in another session. Please go back, reload the page and try again.",
)

#: A write refused while the primary database is down (503): on the form, or as the page.
READ_ONLY = (
    "Read-only for a moment",
    "The site is read-only for a moment: your changes were not saved. Please try again shortly.",
)

#: No database connection came free in time (an overloaded process): 503, try again in a second.
BUSY = ("Busy", "The site is very busy right now: nothing was changed. Please try again in a moment.")
#: Neither database answered a read (or the one a write needs failed under it): 503, try again.
UNREACHABLE = (
    "Database unavailable",
    "The site cannot reach its database right now: nothing was changed. Please try again in a moment.",
)
UNAVAILABLE_RETRY_AFTER = 1

#: Shown when even the error template cannot be rendered (e.g. the database is what failed).
BARE_500 = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Something went wrong · Newsdesk</title>"
    "<h1>Something went wrong</h1><p>Please try again in a moment.</p></html>"
)


def other_handler(error: Exception) -> Callable[[Any], Any] | None:
    """The handler Flask would pick for ``error`` if the page handlers were not registered.

    The same search as ``Flask._find_error_handler``: by code first, then by class, the
    request's blueprints before the app, the exception's class before its bases.
    """
    code = error.code if isinstance(error, HTTPException) else None
    for tier in (code, None) if code is not None else (None,):
        for scope in (*request.blueprints, None):
            handlers = current_app.error_handler_spec[scope][tier]
            for cls in type(error).__mro__:
                handler = handlers.get(cls)
                if handler is not None and handler not in PAGE_HANDLERS:
                    return handler
    return None


def delegate(error: HTTPException) -> ResponseReturnValue:
    handler = other_handler(error)
    if handler is None:
        return error  # no API handler at all: Werkzeug's default response
    return current_app.ensure_sync(handler)(error)


def ensure_user_loaded() -> None:
    """Errors raised before app.identity's before_request (CSRF, body too large) still show who is logged in."""
    if "user" in g:
        return
    try:
        load_session_user()
    except Exception:
        g.user = None


def render_error(code: int, title: str, message: str) -> ResponseReturnValue:
    return render_template("errors/error.html", code=code, title=title, message=message), code


def client_error_page(error: HTTPException) -> ResponseReturnValue:
    if is_api_path(request.path):
        return delegate(error)
    ensure_user_loaded()
    code = error.code or 500
    title, message = PAGE_ERRORS.get(code, (error.name, error.description or ""))
    return render_error(code, title, message)


def csrf_error_page(error: CSRFError) -> ResponseReturnValue:
    if is_api_path(request.path):
        return delegate(error)
    ensure_user_loaded()
    log.info("form refused: %s", error.description)
    return render_error(400, *CSRF_EXPIRED)


def server_error_page(error: HTTPException) -> ResponseReturnValue:
    """Flask has already logged the original exception; only the page is left to render."""
    if is_api_path(request.path):
        return delegate(error)
    try:
        db.session.rollback()  # a failed transaction must not break the page's own reads
        return render_error(500, *PAGE_ERRORS[500])
    except Exception:
        log.exception("the 500 page itself failed to render")
        return BARE_500, 500, {"Content-Type": "text/html; charset=utf-8"}


def refuse_on_form(form: FlaskForm) -> int:
    """A write the form asked for was refused (ReadOnly): the form says so, keeping what was
    typed, and its page is answered 503 (the status returned)."""
    db.session.rollback()  # the refused write left its transaction to be rolled back
    form.form_errors.append(READ_ONLY[1])
    return 503


def unavailable_page(title: str, message: str, retry_after: int, *, load_user: bool) -> ResponseReturnValue:
    """A 503 page with Retry-After, after rolling back what the request began; the bare page
    when even the template fails (the database may be what failed). ``load_user``: show who is
    logged in (not when the database could not be had: that would wait for it again)."""
    headers = {"Retry-After": str(retry_after)}
    try:
        db.session.rollback()
        if load_user:
            ensure_user_loaded()
        return render_template("errors/error.html", code=503, title=title, message=message), 503, headers
    except Exception:
        log.exception("the %s page itself failed to render", title.lower())
        return BARE_500, 503, {**headers, "Content-Type": "text/html; charset=utf-8"}


def read_only_page(error: ReadOnly) -> ResponseReturnValue:
    """Any other write refused while the primary is down: 503 with Retry-After, never a 500."""
    if is_api_path(request.path):
        return read_only_problem(str(error), error.retry_after)
    return unavailable_page(*READ_ONLY, error.retry_after, load_user=True)


def busy_page(error: PoolTimeout | OperationalError) -> ResponseReturnValue:
    """The database could not be had: every connection of the process's pool stayed busy for
    the pool's timeout (5 s: an overloaded process, not a broken one), or a connection or
    statement failed where nothing was left to fall back to (the replica failing a read while
    the primary's breaker is open, say). 503 with Retry-After (problem+json under /api/), never
    a 500; the request's transaction is rolled back, so nothing it began is kept."""
    title, message = BUSY if isinstance(error, PoolTimeout) else UNREACHABLE
    log.warning("answered 503 (%s): %s", title.lower(), getattr(error, "orig", None) or error)
    if not is_api_path(request.path):
        return unavailable_page(title, message, UNAVAILABLE_RETRY_AFTER, load_user=False)
    try:
        db.session.rollback()
    except Exception:
        log.exception("rolling back a request the database failed failed too")
    return http_problem(ServiceUnavailable(message, retry_after=UNAVAILABLE_RETRY_AFTER))


PAGE_HANDLERS: frozenset[Callable[..., ResponseReturnValue]] = frozenset(
    {client_error_page, csrf_error_page, server_error_page}
)


def refused_page(error: NotFound | Forbidden) -> ResponseReturnValue:
    """A service's NotFound or Forbidden on a page: the 404 or 403 page (the API's own
    blueprint handler answers its paths with problem+json before this one is looked up)."""
    return client_error_page(NotFoundPage() if isinstance(error, NotFound) else ForbiddenPage())


def register_error_pages(app: Flask) -> None:
    for code in PAGE_ERRORS:
        if code != 500:
            app.register_error_handler(code, client_error_page)
    app.register_error_handler(500, server_error_page)
    app.register_error_handler(ReadOnly, read_only_page)
    app.register_error_handler(PoolTimeout, busy_page)
    app.register_error_handler(OperationalError, busy_page)
    app.register_error_handler(NotFound, refused_page)
    app.register_error_handler(Forbidden, refused_page)
    app.register_error_handler(CSRFError, csrf_error_page)
