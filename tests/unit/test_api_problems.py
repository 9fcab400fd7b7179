"""The API's errors: the problem+json builder, and every refusal that needs no database.

The app under test points at a PostgreSQL socket and Redis ports where nothing listens,
and records any attempt to reach them: the ``client`` fixture fails a test whose requests
touched a service. The refusals below (401, 404, 405, 413, 415, 400, 422) are therefore
shown to be decided before any database work, which is also why a refused write
cannot have written anything. Keys are stood in for by replacing
``accounts.authenticate_api_key``, the one lookup a write makes before its fields are
validated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import sqlalchemy.exc
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.exceptions import HTTPException, MethodNotAllowed, ServiceUnavailable, TooManyRequests

from app import create_app
from app.api.problems import (
    MALFORMED_JSON,
    PROBLEM_MIMETYPE,
    READ_ONLY,
    VALIDATION,
    ProblemError,
    http_problem,
    problem,
)
from app.config import Settings
from app.database import db
from app.models.article import BODY_MAX, TITLE_MAX
from app.services import accounts
from tests.support import UNIT_ENV, offline_app

TOKEN = "nd_0000abcd_" + "k" * 43
ONE_MIB = 1024 * 1024


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every attempt to reach Redis (any command) or PostgreSQL (a connection), in order."""
    attempts: list[str] = []
    real_command = redis.Redis.execute_command

    def recording_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        attempts.append(f"redis {args[0]}")
        return real_command(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", recording_command)
    return attempts


@pytest.fixture
def app(touched: list[str]) -> Flask:
    app = offline_app()
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "do_connect", lambda *_: touched.append("postgresql connect"))
    return app


@pytest.fixture
def client(app: Flask, touched: list[str]) -> Iterator[FlaskClient]:
    yield app.test_client()
    assert touched == [], f"these requests reached a service: {touched}"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Headers with a key that authenticates without a database."""
    user = SimpleNamespace(id=3, email="ann@example.test", display_name="Ann")
    api_key = SimpleNamespace(id=7, user_id=user.id, user=user, name="laptop", prefix="nd_0000abcd")
    monkeypatch.setattr(accounts, "authenticate_api_key", lambda token: api_key if token == TOKEN else None)
    return {"Authorization": f"Bearer {TOKEN}"}


def assert_problem(response: Any, status: int, type_: str = "about:blank") -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MIMETYPE
    body = json.loads(response.get_data())
    assert body["status"] == status
    assert body["type"] == type_
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --- the builder --------------------------------------------------------------------------


def test_problem_defaults_to_about_blank_titled_by_the_status() -> None:
    response = problem(404)
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_MIMETYPE
    assert json.loads(response.get_data()) == {"type": "about:blank", "title": "Not Found", "status": 404}


def test_problem_carries_type_title_detail_and_extension_members() -> None:
    response = problem(422, "Invalid request", "title: must not be empty", VALIDATION, errors={"title": ["x"]})
    assert json.loads(response.get_data()) == {
        "type": VALIDATION,
        "title": "Invalid request",
        "status": 422,
        "detail": "title: must not be empty",
        "errors": {"title": ["x"]},
    }


def test_problem_extensions_cannot_replace_standard_members() -> None:
    with pytest.raises(TypeError, match="type"):
        problem(400, type="https://example.com/not-via-extra")


def test_http_problem_keeps_the_exceptions_headers_but_not_its_content_type() -> None:
    response = http_problem(MethodNotAllowed(valid_methods=["GET", "POST"]))
    assert response.status_code == 405
    assert response.headers["Content-Type"] == PROBLEM_MIMETYPE
    assert response.headers.getlist("Content-Type") == [PROBLEM_MIMETYPE]
    assert response.headers["Allow"] == "GET, POST"


def test_problem_error_renders_with_its_headers() -> None:
    response = ProblemError(401, detail="no key", headers={"WWW-Authenticate": "Bearer"}).response()
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(response.get_data())["detail"] == "no key"


# --- 404 and 405: routing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v1/articles/abc",
        "/api/v1/articles/0",
        "/api/v1/articles/-1",
        "/api/v1/articles/9223372036854775808",  # beyond BIGINT: no query is made
        "/api/v1/articles/",
        "/api/v1",
        "/api",
        "/api/v2/articles",
    ],
)
def test_unknown_api_paths_are_404_problems(client: FlaskClient, path: str) -> None:
    assert_problem(client.get(path), 404)


def test_pages_keep_their_own_error_pages(app: Flask) -> None:
    response = app.test_client().get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/articles", {"GET", "POST"}),
        ("DELETE", "/api/v1/articles", {"GET", "POST"}),
        ("PUT", "/api/v1/articles/1", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/v1/articles/1", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/v1/articles/popular", {"GET"}),
        ("DELETE", "/api/v1/me", {"GET"}),
        ("POST", "/api/v1/openapi.json", {"GET"}),
    ],
)
def test_wrong_method_is_a_405_problem_with_allow(client: FlaskClient, method: str, path: str, allowed: set) -> None:
    response = client.open(path, method=method, json={"title": "t", "body": "b"})
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


# --- 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/articles"),
        ("PATCH", "/api/v1/articles/1"),
        ("DELETE", "/api/v1/articles/1"),
        ("GET", "/api/v1/me"),
    ],
)
def test_missing_key_is_a_401_problem_with_a_bearer_challenge(client: FlaskClient, method: str, path: str) -> None:
    # The key is checked first: a wrong content type does not tell an anonymous client anything else.
    response = client.open(path, method=method, data="not json", content_type="text/plain")
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize("header", ["Basic YW5uOnB3", "Bearer", "Bearer ", "", "bearer not-a-key", "Token " + TOKEN])
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/articles"), ("GET", "/api/v1/articles")])
def test_malformed_key_is_a_401_problem_even_where_a_key_is_optional(
    client: FlaskClient, header: str, method: str, path: str
) -> None:
    response = client.open(path, method=method, headers={"Authorization": header}, json={"title": "t", "body": "b"})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_unknown_key_is_a_401_problem(client: FlaskClient, key: dict[str, str]) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer nd_ffffffff_" + "x" * 43})
    assert_problem(response, 401)


# --- 415, 413, 400: the body as a whole --------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/merge-patch+json",
        "application/jsonx",
        "text/json",
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/articles"), ("PATCH", "/api/v1/articles/5")])
def test_a_body_that_is_not_application_json_is_a_415_problem(
    client: FlaskClient, key: dict[str, str], content_type: str | None, method: str, path: str
) -> None:
    headers = dict(key)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.open(path, method=method, headers=headers, data=b'{"title": "t", "body": "b"}')
    assert_problem(response, 415)
    assert (response.headers.get("Accept-Patch") == "application/json") == (method == "PATCH")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_application_json_with_parameters_or_in_any_case_is_accepted(
    client: FlaskClient, key: dict[str, str], content_type: str
) -> None:
    response = client.post("/api/v1/articles", headers=key, data=b'{"title": ""}', content_type=content_type)
    assert_problem(response, 422, VALIDATION)  # parsed, then refused for its fields


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/articles"), ("PATCH", "/api/v1/articles/5")])
def test_a_body_over_the_limit_is_a_413_problem(
    client: FlaskClient, key: dict[str, str], method: str, path: str
) -> None:
    data = json.dumps({"title": "t", "body": "b" * (ONE_MIB + ONE_MIB // 2)})
    response = client.open(path, method=method, headers=key, data=data, content_type="application/json")
    assert_problem(response, 413)


def test_the_longest_body_fits_under_the_size_limit(client: FlaskClient, key: dict[str, str]) -> None:
    # 100,000 ASCII characters plus an over-long title: refused for the title (422), not for size (413).
    data = json.dumps({"title": "t" * (TITLE_MAX + 1), "body": "b" * BODY_MAX})
    response = client.post("/api/v1/articles", headers=key, data=data, content_type="application/json")
    body = assert_problem(response, 422, VALIDATION)
    assert set(body["errors"]) == {"title"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"{'title': 'single quotes'}",
        b'{"title": "t", "body": "b",}',
        b'{"title": NaN, "body": "b"}',
        b'{"title": "t", "body": Infinity}',
        b'{"title": "\xff\xfe", "body": "b"}',  # not UTF-8
        b'{"title": 1' + b"0" * 5000 + b', "body": "b"}',  # an integer too long to convert
        b"[" * 100_000 + b"]" * 100_000,  # nesting beyond the parser's recursion limit
        b'{"title": "t"} trailing',
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/articles"), ("PATCH", "/api/v1/articles/5")])
def test_unparseable_json_is_a_400_problem(
    client: FlaskClient, key: dict[str, str], raw: bytes, method: str, path: str
) -> None:
    response = client.open(path, method=method, headers=key, data=raw, content_type="application/json")
    assert_problem(response, 400, MALFORMED_JSON)


# --- 422: the fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ('{"title": "", "body": "b"}', {"title"}),
        ('{"title": "   ", "body": "b"}', {"title"}),
        (json.dumps({"title": "t" * (TITLE_MAX + 1), "body": "b"}), {"title"}),
        ('{"title": "t", "body": ""}', {"body"}),
        ('{"title": "t", "body": " \\n\\t "}', {"body"}),
        (json.dumps({"title": "t", "body": "b" * (BODY_MAX + 1)}), {"body"}),
        ('{"title": 5, "body": ["b"]}', {"title", "body"}),
        ('{"title": null, "body": {"text": "b"}}', {"title", "body"}),
        ('{"title": true, "body": 1.5}', {"title", "body"}),
        ('{"title": "t", "body": "b", "author_id": 9}', {"author_id"}),
        ('{"title": "t", "body": "b", "status": "ready", "views": 1000}', {"status", "views"}),
        ("{}", {"title", "body"}),
        ('{"title": "t"}', {"body"}),
        ('{"title": "a\\u0000b", "body": "b"}', {"title"}),
        ('{"title": "lone \\ud800 surrogate", "body": "b"}', {"title"}),
        ("[]", {"_schema"}),
        ('[{"title": "t", "body": "b"}]', {"_schema"}),
        ('"a string"', {"_schema"}),
        ("null", {"_schema"}),
        ("42", {"_schema"}),
    ],
)
def test_invalid_fields_on_create_are_a_422_problem_by_field(
    client: FlaskClient, key: dict[str, str], raw: str, fields: set[str]
) -> None:
    response = client.post("/api/v1/articles", headers=key, data=raw, content_type="application/json")
    body = assert_problem(response, 422, VALIDATION)
    assert set(body["errors"]) == fields
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())
    assert all(isinstance(message, str) for messages in body["errors"].values() for message in messages)


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ("{}", {"_schema"}),
        ('{"title": ""}', {"title"}),
        ('{"body": 7}', {"body"}),
        ('{"status": "ready"}', {"status"}),
        ('{"title": "t", "id": 99}', {"id"}),
        ("[]", {"_schema"}),
    ],
)
def test_invalid_fields_on_patch_are_a_422_problem_by_field(
    client: FlaskClient, key: dict[str, str], raw: str, fields: set[str]
) -> None:
    response = client.patch("/api/v1/articles/5", headers=key, data=raw, content_type="application/json")
    body = assert_problem(response, 422, VALIDATION)
    assert set(body["errors"]) == fields


def test_the_api_is_exempt_from_csrf(app: Flask, client: FlaskClient, key: dict[str, str]) -> None:
    assert app.config.get("WTF_CSRF_ENABLED", True), "CSRF must be on for this test to mean anything"
    response = client.post("/api/v1/articles", headers=key, json={"title": ""})
    assert_problem(response, 422, VALIDATION)  # not CSRF's 400


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("per_page=0", {"per_page"}),
        ("per_page=101", {"per_page"}),
        ("per_page=-5", {"per_page"}),
        ("per_page=1.5", {"per_page"}),
        ("page=0", {"page"}),
        ("page=-1", {"page"}),
        ("page=abc", {"page"}),
        ("page=", {"page"}),
        ("page=10001", {"page"}),
        ("page=99999999999999999999999", {"page"}),
        ("page=0&per_page=0", {"page", "per_page"}),
    ],
)
def test_pagination_out_of_bounds_is_a_422_problem(client: FlaskClient, query: str, fields: set[str]) -> None:
    body = assert_problem(client.get(f"/api/v1/articles?{query}"), 422, VALIDATION)
    assert set(body["errors"]) == fields


# --- any other HTTP error, and anything unexpected -------------------------------------------------


@pytest.mark.parametrize(
    ("error", "header"),
    [(TooManyRequests(retry_after=30), "Retry-After"), (ServiceUnavailable(retry_after=5), "Retry-After")],
)
def test_any_http_error_under_api_is_a_problem_with_its_headers(
    app: Flask, client: FlaskClient, error: HTTPException, header: str
) -> None:
    # What a rate limiter (429) or a drain (503) raises; the route exists only in this test's app.
    def fail() -> None:
        raise error

    app.add_url_rule("/api/v1/test-only/fail", "test_only_fail", fail)
    response = client.get("/api/v1/test-only/fail")
    assert_problem(response, error.code)
    assert response.headers[header]


def test_only_a_429_carries_the_limiters_retry_after(key: dict[str, str]) -> None:
    # The limiter's own Retry-After (its window's reset) would otherwise override a 503's.
    app = create_app(Settings.from_env({**UNIT_ENV, "API_WRITE_LIMIT": "2/minute"}))
    client = app.test_client()
    responses = [client.post("/api/v1/articles", headers=key, json={"title": ""}) for _ in range(3)]
    assert [response.status_code for response in responses] == [422, 422, 429]
    assert "Retry-After" not in responses[0].headers
    assert int(responses[2].headers["Retry-After"]) > 0


# --- anything unexpected ------------------------------------------------------------------------


def test_an_unexpected_failure_is_a_500_problem_that_leaks_nothing(app: Flask) -> None:
    def fail() -> None:
        raise RuntimeError("psycopg2 OperationalError: secret details")

    app.add_url_rule("/api/v1/test-only/boom", "test_only_boom", fail)
    body = assert_problem(app.test_client().get("/api/v1/test-only/boom"), 500)
    assert "psycopg2" not in body["detail"] and "secret" not in body["detail"]


def test_a_pool_with_no_free_connection_is_a_503_to_retry_never_a_500(app: Flask) -> None:
    # What QueuePool raises when every connection stayed checked out for pool_timeout (an
    # overloaded process: seen under make bench's open loop as 500s).
    def exhausted() -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached, connection timed out")

    app.add_url_rule("/api/v1/test-only/exhausted", "test_only_api_exhausted", exhausted)
    app.add_url_rule("/test-only/exhausted", "test_only_page_exhausted", exhausted)
    client = app.test_client()
    api = client.get("/api/v1/test-only/exhausted")
    body = assert_problem(api, 503)
    assert api.headers["Retry-After"] == "1"
    assert "QueuePool" not in body["detail"]
    page = client.get("/test-only/exhausted")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert page.headers["Retry-After"] == "1"
    assert "very busy" in page.get_data(as_text=True) and "QueuePool" not in page.get_data(as_text=True)


def test_a_database_failure_with_nothing_left_to_fall_back_to_is_a_503_never_a_500(app: Flask) -> None:
    # Seen under make bench: a read refused by the primary's open breaker, retried on the replica,
    # whose connect check then timed out too.
    def unreachable() -> None:
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("pgbouncer-replica:6432 did not answer"))

    app.add_url_rule("/api/v1/test-only/unreachable", "test_only_api_unreachable", unreachable)
    app.add_url_rule("/test-only/unreachable", "test_only_page_unreachable", unreachable)
    client = app.test_client()
    api = client.get("/api/v1/test-only/unreachable")
    body = assert_problem(api, 503)
    assert api.headers["Retry-After"] == "1" and "pgbouncer" not in body["detail"]
    page = client.get("/test-only/unreachable")
    assert page.status_code == 503 and "cannot reach its database" in page.get_data(as_text=True)
    assert "pgbouncer" not in page.get_data(as_text=True)


def test_an_unreachable_database_is_a_503_problem_that_leaks_nothing(
    app: Flask, key: dict[str, str], touched: list[str]
) -> None:
    # Reading an article needs a database; neither is reachable here.
    response = app.test_client().get("/api/v1/articles/1", headers=key)
    body = assert_problem(response, 503, READ_ONLY)
    assert "postgresql connect" in touched  # the tripwire the other tests rely on works
    assert "psycopg2" not in body["detail"] and "OperationalError" not in body["detail"]


def test_a_write_without_the_primary_is_a_503_problem_then_refused_without_trying(
    app: Flask, key: dict[str, str], touched: list[str]
) -> None:
    def post() -> Any:
        return app.test_client().post("/api/v1/articles", headers=key, json={"title": "t", "body": "b"})

    first = post()
    assert_problem(first, 503, READ_ONLY)
    assert 1 <= int(first.headers["Retry-After"]) <= 5
    assert "postgresql connect" in touched
    touched.clear()
    # The primary's breaker is open now: the next write is refused before any connection attempt.
    assert_problem(post(), 503, READ_ONLY)
    assert "postgresql connect" not in touched
