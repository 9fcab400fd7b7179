"""flask-smorest's Api, adapted: errors are problem+json, and the docs load no asset from a CDN."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask
from flask_smorest import Api

from app.api.problems import PROBLEM_MIMETYPE
from app.api.schemas import ArticlePatchSchema, ProblemSchema

URL_PREFIX = "/api/v1"
#: Under the app's static folder (see its README). The docs page links the files by their hashed
#: names through url_for (app/templates/swagger_ui.html); this URL only has to be set.
SWAGGER_UI_ASSETS = "vendor/swagger-ui/"

DESCRIPTION = """\
Articles and the account behind an API key.

**Authentication.** Writes and `/me` need an API key (create one on your account page):
`Authorization: Bearer <key>`. Reads work without one; anonymous reads are served from a
shared cache and may be a few seconds old, while a reader with a key always sees its own writes.

**Errors** are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`) with `type`, `title`, `status` and `detail`; validation problems
(422) add `errors`, the messages by field.
"""

_HEADER = {"schema": {"type": "string"}}
PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {**_HEADER, "description": 'The Bearer challenge, e.g. `Bearer realm="newsdesk"`'}},
    405: {"Allow": {**_HEADER, "description": "The methods the path allows"}},
    415: {"Accept-Patch": {**_HEADER, "description": "On PATCH: `application/json`"}},
    503: {"Retry-After": {**_HEADER, "description": "Seconds after which the write may succeed"}},
}
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON: the body could not be parsed",
    401: "No API key, or one that is malformed, unknown or revoked",
    403: "The key's owner is not the article's author",
    404: "No such article",
    413: "The body is larger than 1 MiB",
    415: "The body is not `application/json`",
    422: "Invalid fields, query arguments, or a body that is not a JSON object (see `errors`)",
    503: "Read-only for a moment: the primary database cannot be reached (reads go on); retry after `Retry-After`",
}


TAGS = [
    {"name": "articles", "description": "Reading (no key needed) and writing (the author's key) articles"},
    {"name": "account", "description": "The account behind an API key"},
]


def api_config(app: Flask) -> dict[str, Any]:
    """flask-smorest's settings: code, not environment (they describe the API, not a deployment)."""
    return {
        "API_TITLE": "Newsdesk API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": URL_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": f"{app.static_url_path}/{SWAGGER_UI_ASSETS}",
        # validatorUrl: Swagger UI would otherwise load a badge from validator.swagger.io.
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None, "deepLinking": True, "displayRequestDuration": True},
        # Replaces the one tag flask-smorest derives from the blueprint: operations carry their own.
        "API_SPEC_OPTIONS": {"info": {"description": DESCRIPTION}, "tags": TAGS},
    }


class ProblemApi(Api):
    """``Api`` whose error responses, served and documented, are problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Replaced: flask-smorest's handler would answer every HTTPException of the whole app,
        HTML pages included, in its own JSON shape. app.api.problems renders API errors instead."""

    def _register_pagination_header(self) -> None:
        """Replaced: pages are described in the body (ArticlePage), not in an X-Pagination header."""

    def _register_responses(self) -> None:
        """One reusable response per error status (referenced by ``bp.problems``), as problem+json."""
        for status in HTTPStatus:
            if status < 400:
                continue
            response: dict[str, Any] = {
                "description": PROBLEM_DESCRIPTIONS.get(status, status.phrase),
                "content": {PROBLEM_MIMETYPE: {"schema": self.ERROR_SCHEMA}},
            }
            if status in PROBLEM_HEADERS:
                response["headers"] = PROBLEM_HEADERS[status]
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response(
            self.DEFAULT_ERROR_RESPONSE_NAME,
            {
                "description": "Any other error, e.g. 405 (method not allowed), 429, 500",
                "content": {PROBLEM_MIMETYPE: {"schema": self.ERROR_SCHEMA}},
            },
            lazy=True,
        )

    def declare_schemas(self) -> None:
        """Schemas whose JSON Schema says more than marshmallow's fields can: a PATCH needs at
        least one field (the services refuse ``{}``, and ArticlePatchSchema validates so too)."""
        self.spec.components.schema("ArticlePatch", {"minProperties": 1}, schema=ArticlePatchSchema)

    def declare_security(self) -> None:
        self.spec.components.security_scheme(
            "ApiKey",
            {"type": "http", "scheme": "bearer", "description": "An API key from your account page"},
        )
