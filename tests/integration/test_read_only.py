"""Read-only mode: with the primary unreachable, reads go on from the real replica, logins and
API keys work, writes are refused fast with ReadOnly (503), and readiness says degraded.

The app under test has the real replica but a primary URL where nothing listens (`db:1`):
the rows are written beforehand through the normal app and wait until the replica has them.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask, g
from sqlalchemy import event

from app import create_app
from app.database import db, primary_available, reads_behind
from app.identity import user_writer
from app.models import ApiKey, Article, User
from app.services import accounts, articles, cache, queries
from app.services.errors import ReadOnly
from tests.integration.support import integration_settings, replica_replay_paused
from tests.polling import wait_until

PASSWORD = "long-enough-password"
TITLE = "Readable without the primary"
#: A WAL position no replica has replayed: "a write the replica lacks".
FAR_AHEAD = 2**62


@dataclass(frozen=True)
class Written:
    user_id: int
    email: str
    article_id: int
    key: str


@pytest.fixture
def written(app: Flask) -> Written:
    """An author, an article and an API key, on the primary and (waited for) on the replica."""
    with app.app_context():
        user = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Reader", PASSWORD)
        article = articles.create_article(user, {"title": TITLE, "body": "Body."})
        key, plaintext = accounts.create_api_key(user, "script")
        found = Written(user.id, user.email, article.id, plaintext)
        wait_until(lambda: on_replica(sa.select(ApiKey.id).where(ApiKey.id == key.id)), 10, message="key replicated")
    return found


def on_replica(query: sa.Select) -> bool:
    with db.engines["replica"].connect() as conn:
        return conn.execute(query).first() is not None


@pytest.fixture
def primary_down() -> Iterator[Flask]:
    settings = integration_settings(
        DATABASE_URL=integration_settings().database_url.replace("@db:5432", "@db:1"),
        RATELIMIT_STORAGE_URL="memory://",  # not the stack's limiter database
    )
    broken = create_app(settings)
    yield broken
    with broken.app_context():
        for engine in db.engines.values():
            engine.dispose()


def remember_a_write_ahead_of_the_replica(app: Flask, user_id: int) -> None:
    app.extensions["db_router"].positions.remember(user_writer(user_id), FAR_AHEAD)


@contextlib.contextmanager
def request_of_a_writer_ahead_of_the_replica(app: Flask, user_id: int) -> Iterator[None]:
    """A request of ``user_id``, whose latest write no replica has replayed."""
    remember_a_write_ahead_of_the_replica(app, user_id)
    with app.test_request_context():
        g.writer = user_writer(user_id)
        yield


def connection_attempts(app: Flask) -> list[str]:
    """Every attempt to connect to the (unreachable) primary, from now on."""
    attempts: list[str] = []
    with app.app_context():
        event.listen(db.engines[None], "do_connect", lambda *_: attempts.append("primary"))
    return attempts


def test_reads_go_on_from_the_replica(written: Written, primary_down: Flask) -> None:
    with primary_down.test_request_context():
        listing = queries.list_articles(20)
        assert [item["title"] for item in listing.items] == [TITLE]
        assert listing.total == 1
        assert queries.get_article(written.article_id)["title"] == TITLE


def test_a_reader_whose_write_the_replica_lacks_reads_it_anyway_and_is_told(
    written: Written, primary_down: Flask
) -> None:
    with request_of_a_writer_ahead_of_the_replica(primary_down, written.user_id):
        # Read-your-writes sends this read to the primary, which fails: it runs again on the replica.
        assert queries.get_article(written.article_id)["title"] == TITLE
        assert not primary_available()
        assert reads_behind()


def test_a_read_routed_to_the_primary_just_before_its_breaker_opened_goes_to_the_replica(
    written: Written, primary_down: Flask
) -> None:
    with request_of_a_writer_ahead_of_the_replica(primary_down, written.user_id):
        assert db.session.get_bind(clause=sa.select(Article)) is db.engines[None], "decided: the primary"
        # Meanwhile another request finds the primary down (under gevent, while this one waits).
        primary_down.extensions["db_router"].primary.trip(ConnectionRefusedError())
        assert queries.get_article(written.article_id)["title"] == TITLE


def test_a_write_is_refused_in_under_a_second_then_without_trying(written: Written, primary_down: Flask) -> None:
    attempts = connection_attempts(primary_down)
    with primary_down.test_request_context():
        author = db.session.get(User, written.user_id)
        assert author is not None
        started = time.monotonic()
        with pytest.raises(ReadOnly):
            articles.create_article(author, {"title": "Never written", "body": "Body."})
        assert time.monotonic() - started < 1.0
        assert attempts, "the first write tried the primary"
        db.session.rollback()

        attempts.clear()
        with pytest.raises(ReadOnly) as refused:
            articles.create_article(author, {"title": "Never written", "body": "Body."})
        assert attempts == [], "the breaker is open: refused without a connection attempt"
        assert 1 <= refused.value.retry_after <= 5


def test_login_and_api_keys_work_without_the_primary(written: Written, primary_down: Flask) -> None:
    with primary_down.test_request_context():
        user = accounts.authenticate(written.email, PASSWORD)  # looked up on the primary, normally
        assert user is not None and user.id == written.user_id
        key = accounts.authenticate_api_key(written.key)
        assert key is not None and key.user_id == written.user_id
        assert accounts.authenticate_api_key(written.key[:-4] + "zzzz") is None


def key_works(app: Flask, plaintext: str) -> bool:
    with app.test_request_context():  # a request of its own: no position remembered from the writes
        return accounts.authenticate_api_key(plaintext) is not None


def test_a_key_created_a_moment_ago_works_though_the_replica_lacks_it(app: Flask, written: Written) -> None:
    with replica_replay_paused():
        with app.app_context():
            _, plaintext = accounts.create_api_key(db.session.get_one(User, written.user_id), "just now")
        assert key_works(app, plaintext)


def test_a_revoked_key_stops_working_within_the_bound_even_on_a_stalled_replica(app: Flask, written: Written) -> None:
    assert key_works(app, written.key)
    with replica_replay_paused():
        with app.app_context():
            user = db.session.get_one(User, written.user_id)
            accounts.revoke_api_key(user, user.api_keys[0].id)
        revoked = time.monotonic()
        wait_until(lambda: not key_works(app, written.key), accounts.KEY_CHECK_MAX_LAG_SECONDS + 2, interval=0.1)
        assert time.monotonic() - revoked <= accounts.KEY_CHECK_MAX_LAG_SECONDS + 0.5


def test_readiness_is_degraded_not_down(primary_down: Flask) -> None:
    response = primary_down.test_client().get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert not body["checks"]["db"]["ok"] and body["checks"]["db_replica"]["ok"]


def test_the_api_reads_with_and_without_a_key_and_refuses_writes_fast(
    app: Flask, written: Written, primary_down: Flask
) -> None:
    client = primary_down.test_client()
    auth = {"Authorization": f"Bearer {written.key}"}
    for _ in range(2):  # the first meets a closed breaker, the second an open one
        started = time.monotonic()
        response = client.post("/api/v1/articles", headers=auth, json={"title": "Refused", "body": "Body."})
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 503
        assert 1 <= int(response.headers["Retry-After"]) <= 5
    for headers in ({}, auth):
        listing = client.get("/api/v1/articles", headers=headers)
        assert listing.status_code == 200 and listing.get_json()["total"] == 1
        assert client.get(f"/api/v1/articles/{written.article_id}", headers=headers).status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Article)) == 1, "nothing half-written"


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found, "the form carries a CSRF token"
    return found.group(1)


def test_pages_for_anonymous_and_logged_in_readers(written: Written, primary_down: Flask) -> None:
    client = primary_down.test_client()
    for path in ("/", f"/articles/{written.article_id}", "/popular"):
        assert client.get(path).status_code == 200, path

    token = csrf_token(client.get("/login").get_data(as_text=True))
    login = client.post("/login", data={"email": written.email, "password": PASSWORD, "csrf_token": token})
    assert login.status_code == 302, login.get_data(as_text=True)
    remember_a_write_ahead_of_the_replica(primary_down, written.user_id)
    page = client.get("/")
    assert page.status_code == 200
    assert "Logged in as Reader" in page.get_data(as_text=True)
    assert "may be a moment behind" in page.get_data(as_text=True)

    token = csrf_token(client.get("/write").get_data(as_text=True))
    refused = client.post("/write", data={"title": "Typed", "body": "Text the reader typed.", "csrf_token": token})
    assert refused.status_code == 503
    assert "read-only for a moment" in refused.get_data(as_text=True)
    assert "Text the reader typed." in refused.get_data(as_text=True), "the form keeps what was typed"


def test_the_home_page_just_invalidated_is_refilled_from_a_replica_short_of_the_write(
    written: Written, primary_down: Flask
) -> None:
    client = primary_down.test_client()
    assert TITLE in client.get("/").get_data(as_text=True)  # cached
    with primary_down.app_context():
        cache.current_cache().invalidate((cache.LATEST,), FAR_AHEAD)
    page = client.get("/")
    assert page.status_code == 200
    assert TITLE in page.get_data(as_text=True)
