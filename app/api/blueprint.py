"""The API blueprint, and how its errors become problems.

Every refusal reaches the client as problem+json in one shape: service errors (validation,
not found, forbidden, conflict) through the handler below, invalid query arguments through
``ProblemParser`` (webargs' errors re-raised as the services' ``ValidationFailed``), and
HTTP errors through app.api.problems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, NoReturn, TypeVar

import flask
import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from app.api.problems import VALIDATION, problem, read_only_problem
from app.services.errors import Conflict, Forbidden, NotFound, ReadOnly, ServiceError, ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])

#: OpenAPI security requirements: a key is needed; a key is optional (anonymous reads are cached).
KEY_REQUIRED: list[dict[str, list[str]]] = [{"ApiKey": []}]
KEY_OPTIONAL: list[dict[str, list[str]]] = [{}, {"ApiKey": []}]


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as ``{"field" or "parent.field": [messages]}``."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for name, inner in messages.items():
            for field, texts in flatten_messages(inner, f"{prefix}.{name}" if prefix else str(name)).items():
                flat.setdefault(field, []).extend(texts)
        return flat
    texts = messages if isinstance(messages, list) else [messages]
    return {prefix or "_schema": [str(text) for text in texts]}


class ProblemParser(FlaskParser):
    """webargs parser whose errors have the services' 422 shape instead of webargs' own."""

    def handle_error(
        self,
        error: ma.ValidationError,
        req: flask.Request,
        schema: ma.Schema,
        *,
        error_status_code: int | None,
        error_headers: Mapping[str, str] | None,
    ) -> NoReturn:
        # webargs nests messages under the location ({"query": {...}}); the client needs the fields.
        messages = error.messages
        if isinstance(messages, Mapping) and len(messages) == 1:
            (messages,) = messages.values()
        raise ValidationFailed(flatten_messages(messages))


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ProblemParser()

    def problems(self, *statuses: int) -> Callable[[F], F]:
        """Document that the operation may answer each of ``statuses`` with a problem."""

        def decorator(view: F) -> F:
            for status in statuses:
                view = self.alt_response(status, response=HTTPStatus(status).name)(view)
            return view

        return decorator


bp = ApiBlueprint(
    "api",
    __name__,
    description="Newsdesk JSON API v1: articles and the key owner's account.",
)


@bp.errorhandler(ServiceError)
def service_problem(exc: ServiceError) -> Response:
    if isinstance(exc, ValidationFailed):
        return problem(422, "Invalid request", str(exc), VALIDATION, errors=exc.errors)
    if isinstance(exc, ReadOnly):
        return read_only_problem(str(exc), exc.retry_after)
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Forbidden):
        status = 403
    elif isinstance(exc, Conflict):
        status = 409
    else:
        status = 400
    return problem(status, detail=str(exc) or None)
