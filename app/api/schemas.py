"""marshmallow schemas of the API: what the OpenAPI document shows, and what responses are dumped through.

Responses are dumped through their schema, so the document cannot promise a field that
is not sent. Request bodies are *not* loaded through these schemas: the services validate
them (app.services.validation, the same rules as the HTML forms), and the request schemas
below only describe those rules; tests/unit/test_api_spec.py checks that the two agree.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.models.article import BODY_MAX, STATUS_PROCESSING, STATUS_READY, TITLE_MAX
from app.models.base import BIGINT_MAX
from app.services.queries import CURSOR_PATTERN, MAX_CURSOR_LENGTH, MAX_PAGE
from app.services.validation import NO_ARTICLE_FIELDS

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
#: Article ids are BIGINT.
MAX_ARTICLE_ID = BIGINT_MAX

_TIMESTAMP = {"format": "date-time", "description": "ISO 8601 with offset"}


class ResponseSchema(ma.Schema):
    """A response body. Clients must ignore members they do not know: new ones may be added."""

    class Meta:
        unknown = ma.EXCLUDE  # documented without additionalProperties: false


class PageQuerySchema(ma.Schema):
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={
            "description": "a numbered page (an OFFSET: deep pages cost more; follow `next` instead, which costs "
            "the same at any depth)"
        },
    )
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH),
        metadata={
            "description": "where the page starts: the opaque value in a previous page's `next` (wins over `page`)",
            "pattern": CURSOR_PATTERN,
        },
    )


class AuthorSchema(ResponseSchema):
    id = fields.Integer(required=True)
    display_name = fields.String(required=True)


class ArticleSummarySchema(ResponseSchema):
    """An article without its body, as in listings."""

    id = fields.Integer(required=True)
    title = fields.String(required=True)
    author = fields.Nested(AuthorSchema, required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf([STATUS_PROCESSING, STATUS_READY]),
        metadata={"description": "`processing` until the background job has written summary and keywords"},
    )
    summary = fields.String(required=True, allow_none=True)
    keywords = fields.List(fields.String(), required=True)
    views = fields.Integer(required=True, metadata={"description": "counted in batches: may lag by a few seconds"})
    published_at = fields.String(required=True, metadata=_TIMESTAMP)
    updated_at = fields.String(required=True, metadata=_TIMESTAMP)


class ArticleSchema(ArticleSummarySchema):
    """An article with its body."""

    body = fields.String(required=True)


class ArticlePageSchema(ResponseSchema):
    items = fields.List(fields.Nested(ArticleSummarySchema), required=True)
    page = fields.Integer(required=True, allow_none=True, metadata={"description": "null on a page after a cursor"})
    per_page = fields.Integer(required=True)
    total = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "articles in all pages (exact); null on a page after a cursor"},
    )
    pages = fields.Integer(
        required=True, allow_none=True, metadata={"description": "number of pages; at least 1; null after a cursor"}
    )
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "URL path of the next (older) page, by cursor; null on the last page. "
            'Also sent as `Link: <...>; rel="next"`.'
        },
    )


class ArticleListSchema(ResponseSchema):
    items = fields.List(fields.Nested(ArticleSummarySchema), required=True)


#: Not only whitespace, and no NUL character anywhere (app.services.validation refuses both).
TEXT_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"
_TITLE_DOC = {
    "description": f"1 to {TITLE_MAX} characters once surrounding whitespace is trimmed (it is stored trimmed); "
    "no NUL characters",
    "pattern": TEXT_PATTERN,
}
_BODY_DOC = {
    "description": f"1 to {BODY_MAX} characters, not only whitespace; no NUL characters",
    "pattern": TEXT_PATTERN,
}


class ArticleCreateSchema(ma.Schema):
    """A new article. Fields not listed here are refused (422)."""

    class Meta:
        unknown = ma.RAISE

    title = fields.String(required=True, validate=validate.Length(min=1, max=TITLE_MAX), metadata=_TITLE_DOC)
    body = fields.String(required=True, validate=validate.Length(min=1, max=BODY_MAX), metadata=_BODY_DOC)


class ArticlePatchSchema(ma.Schema):
    """Changes to an article: at least one of the fields. Fields not listed here are refused (422)."""

    class Meta:
        unknown = ma.RAISE

    title = fields.String(validate=validate.Length(min=1, max=TITLE_MAX), metadata=_TITLE_DOC)
    body = fields.String(validate=validate.Length(min=1, max=BODY_MAX), metadata=_BODY_DOC)

    @ma.validates_schema
    def at_least_one_field(self, data: dict[str, object], **_kwargs: object) -> None:
        """``{}`` changes nothing and is refused (the document says ``minProperties: 1``)."""
        if not data:
            raise ma.ValidationError(NO_ARTICLE_FIELDS)


class ApiKeyInfoSchema(ResponseSchema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "the key's visible start, e.g. `nd_4f9c2a1b`"})


class MeSchema(ResponseSchema):
    """The account that owns the API key of the request, and that key."""

    id = fields.Integer(required=True)
    email = fields.String(required=True, metadata={"format": "email"})
    display_name = fields.String(required=True)
    created_at = fields.String(required=True, metadata=_TIMESTAMP)
    key = fields.Nested(ApiKeyInfoSchema, required=True)


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    class Meta:
        unknown = ma.INCLUDE  # extension members are allowed

    type = fields.String(
        required=True,
        metadata={
            "format": "uri-reference",
            "description": "`about:blank` (nothing beyond the status), or a URI naming the problem, e.g. "
            "`https://newsdesk.dev/problems/validation`",
        },
    )
    title = fields.String(required=True, metadata={"description": "short summary; the same for every occurrence"})
    status = fields.Integer(required=True, metadata={"description": "the HTTP status code"})
    detail = fields.String(metadata={"description": "what went wrong with this request"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "validation problems only: messages by field; `_schema` for the body as a whole",
            "example": {"title": ["must not be empty"]},
        },
    )
