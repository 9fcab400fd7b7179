"""RFC 9457 problem details (``application/problem+json``): the shape of every API error.

``problem`` builds one response. ``ProblemError`` carries one up from wherever the API
decides to refuse a request; it is deliberately not an ``HTTPException``, so Flask's
by-status-code handler search (where the HTML error pages are registered) never sees it.
``init_problem_handlers`` renders problem+json for any ``HTTPException`` on a path under
``/api/`` (unknown path, wrong method, body too large, a rate limiter's 429, a 500) and
hands every other path back untouched, so the site's pages render their own errors.
(app.web.errors delegates /api/ errors to these handlers.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_MIMETYPE = "application/problem+json"
API_PREFIX = "/api/"

#: Problem types with meaning beyond their status code; every other problem is "about:blank".
PROBLEM_TYPES = "https://newsdesk.dev/problems/"
VALIDATION = PROBLEM_TYPES + "validation"
MALFORMED_JSON = PROBLEM_TYPES + "malformed-json"
READ_ONLY = PROBLEM_TYPES + "read-only"

_MEMBERS = frozenset({"type", "title", "status", "detail"})


def status_phrase(status: int) -> str:
    return HTTP_STATUS_CODES.get(status, "Unknown Error")


def problem(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    type_: str | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response.

    Without ``type_`` the type is "about:blank", whose title must be the status phrase
    (RFC 9457 section 4.2.1), so ``title`` defaults to it. ``extra`` adds extension members
    such as ``errors``; it cannot replace the standard ones.
    """
    clashing = _MEMBERS & extra.keys()
    if clashing:
        raise TypeError(f"problem(): {sorted(clashing)} are standard members, not extensions")
    body: dict[str, Any] = {"type": type_ or "about:blank", "title": title or status_phrase(status), "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)


def read_only_problem(detail: str, retry_after: int) -> Response:
    """503: the primary database cannot be reached; a write may succeed after ``retry_after`` seconds."""
    response = problem(503, "Read-only for a moment", detail, READ_ONLY)
    response.headers["Retry-After"] = str(retry_after)
    return response


class ProblemError(Exception):
    """Raise to answer the current request with a problem (plus ``headers``)."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        type_: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title or status_phrase(status))
        self.status = status
        self.title = title
        self.detail = detail
        self.type_ = type_
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> Response:
        response = problem(self.status, self.title, self.detail, self.type_, **self.extra)
        response.headers.update(self.headers)
        return response


def http_problem(error: HTTPException) -> Response:
    """``error`` as a problem, keeping its headers (``Allow`` on a 405, ``Retry-After``, ...)."""
    response = problem(error.code or 500, detail=error.description)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response


def is_api_path(path: str) -> bool:
    return path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX)


def init_problem_handlers(app: Flask) -> None:
    """problem+json for errors under /api/; other paths keep their own error pages."""

    def render_http_error(error: HTTPException) -> Response | HTTPException:
        if not is_api_path(request.path):
            return error  # not ours: Werkzeug's default page, unless a page handler takes it
        return http_problem(error)

    def render_problem_error(error: ProblemError) -> Response:
        return error.response()

    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(ProblemError, render_problem_error)
