"""What a request brings: its API key (``Authorization: Bearer``) and its JSON body.

A write is checked in this order, each step answering with a problem: the key (401),
the content type (415), the size (413, Flask's MAX_CONTENT_LENGTH), the JSON syntax (400),
then the fields (422, by the services). Only the key lookup reads the database before the
services take over, and they write nothing until they have accepted the fields.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NoReturn, cast, overload

import sqlalchemy as sa
from flask import request
from sqlalchemy.orm import InstanceState
from werkzeug.exceptions import RequestEntityTooLarge

from app.api.problems import MALFORMED_JSON, ProblemError
from app.database import db
from app.identity import use_api_key
from app.models import ApiKey
from app.response_cache import local_pages
from app.services import accounts
from app.services.errors import ValidationFailed
from app.services.keys import bearer_token, hash_key, looks_like_key
from app.services.validation import NOT_UNICODE, is_unicode_text

JSON_MIMETYPE = "application/json"
#: RFC 6750 challenges: a request without credentials, and one whose key was refused.
CHALLENGE = 'Bearer realm="newsdesk"'
INVALID_KEY_CHALLENGE = 'Bearer realm="newsdesk", error="invalid_token"'


def unauthorized(detail: str, challenge: str) -> ProblemError:
    return ProblemError(401, detail=detail, headers={"WWW-Authenticate": challenge})


@overload
def api_key(*, required: Literal[True]) -> ApiKey: ...
@overload
def api_key(*, required: bool) -> ApiKey | None: ...


def api_key(*, required: bool) -> ApiKey | None:
    """The request's active API key, now also its identity (g.user, g.writer); None if it sent none.

    A key that is sent but malformed, unknown or revoked is a 401 even where a key is
    optional: a client that means to authenticate must learn that it did not.
    """
    header = request.headers.get("Authorization")
    if header is None:
        if required:
            raise unauthorized("this request needs an API key: send `Authorization: Bearer <key>`", CHALLENGE)
        return None
    token = bearer_token(header)
    key = authenticate(token) if token else None
    if key is None:
        raise unauthorized("the API key is malformed, unknown or revoked", INVALID_KEY_CHALLENGE)
    use_api_key(key)
    return key


def authenticate(token: str) -> ApiKey | None:
    """The active key for ``token``: kept in this process's memory while no revocation can
    have been missed (app.response_cache), else checked as app.services.accounts does."""
    if not looks_like_key(token):
        return None
    key_hash = hash_key(token)
    memory = local_pages()
    key = memory.known_key(key_hash)
    if key is not None:
        accounts.touch_api_key(key)
        return key
    epoch = memory.keys_epoch
    key = accounts.authenticate_api_key(token)
    if key is not None:
        # Out of the session, with the user it was loaded with: a copy kept across requests must
        # not be expired by this request's commit (and then fail to reload, being detached).
        for loaded in (key.user, key):
            state = cast("InstanceState[object] | None", sa.inspect(loaded, raiseerr=False))
            if state is not None and state.session is not None:
                db.session.expunge(loaded)
        memory.keep_key(key_hash, key, epoch)
    return key


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _malformed(detail: str) -> ProblemError:
    return ProblemError(400, "Malformed JSON", detail, MALFORMED_JSON)


def json_object() -> dict[str, Any]:
    """The body as a JSON object, or a problem: 415, 413, 400, or 422 when it is not an object."""
    if request.mimetype != JSON_MIMETYPE:
        sent = f"`{request.mimetype}`" if request.mimetype else "no Content-Type"
        headers = {"Accept-Patch": JSON_MIMETYPE} if request.method == "PATCH" else {}
        detail = f"send the body as `{JSON_MIMETYPE}` (this request sent {sent})"
        raise ProblemError(415, detail=detail, headers=headers)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise ProblemError(413, detail=f"the body is larger than {request.max_content_length} bytes") from None
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise _malformed("the body is nested too deeply to be parsed") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long to convert
        raise _malformed(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationFailed({"_schema": ["the body must be a JSON object"]})
    # JSON may escape lone surrogates ("\ud800"); they are no text PostgreSQL can store.
    unencodable = [name for name, value in data.items() if isinstance(value, str) and not is_unicode_text(value)]
    if unencodable:
        raise ValidationFailed({name: [NOT_UNICODE] for name in unencodable})
    return data
