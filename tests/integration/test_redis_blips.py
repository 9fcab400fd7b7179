"""Redis blips against the real `redis` service: connections closed by the server (as a restart
closes them) cost no request, log nobody out, and never count a view twice.

The connections are closed with CLIENT KILL, only those to the tests' own database.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.models import Article
from app.redis_clients import counter_client_options, retrying_client_options
from app.services import accounts, articles, view_counts
from tests.integration.redis_faults import kill_clients, wait_for_blocked


def redis_url(app: Flask) -> str:
    url: str = app.extensions["settings"].redis_url
    return url


def test_a_session_survives_its_connections_being_killed(app: Flask) -> None:
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["probe"] = "still logged in"
    assert kill_clients(redis_url(app)) >= 1
    with browser.session_transaction() as session:
        # A failed read would have been served as an empty (logged-out) session, not an error.
        assert session.get("probe") == "still logged in"


def test_a_session_read_that_failed_does_not_log_the_visitor_out(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blip longer than the retries fails one read: that request is served anonymously (the
    login page, which puts a CSRF token in its session), and Redis is back before it is saved.
    Saving that stand-in session would replace the visitor's cookie, logging them out for good."""
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["probe"] = "still logged in"
    interface = app.session_interface

    def unreachable(store_id: str) -> None:
        raise redis.ConnectionError("Redis is restarting")

    monkeypatch.setattr(interface, "_retrieve_session_data", unreachable)
    response = browser.get("/login")
    monkeypatch.undo()
    assert response.status_code == 200
    assert not [c for c in response.headers.getlist("Set-Cookie") if c.startswith(app.config["SESSION_COOKIE_NAME"])]
    with browser.session_transaction() as session:
        assert session.get("probe") == "still logged in"


def blpop_in_thread(client: redis.Redis, key: str) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = client.blpop([key], timeout=10)
        except redis.RedisError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize(
    ("options", "resent"),
    [(retrying_client_options, True), (counter_client_options, False)],
    ids=["retrying", "counter"],
)
def test_a_command_whose_connection_dies_in_flight_is_resent_only_by_the_retrying_client(
    app: Flask, options: Any, resent: bool
) -> None:
    """BLPOP stays in flight (blocked in Redis) until the test kills its connection."""
    url = redis_url(app)
    retries = app.extensions["settings"].redis_retries
    client = redis.Redis.from_url(url, **(options(retries) | {"socket_timeout": 15}))
    key = f"test:blips:{uuid.uuid4().hex}"
    thread, outcome = blpop_in_thread(client, key)
    wait_for_blocked(url, "blpop")
    assert kill_clients(url) >= 1
    if resent:
        wait_for_blocked(url, "blpop")  # the same command, sent again on a new connection
        client.rpush(key, "x")
    thread.join(15)
    assert not thread.is_alive()
    if resent:
        assert outcome == {"value": (key.encode(), b"x")}
    else:
        assert isinstance(outcome.get("error"), redis.ConnectionError)
    client.close()


def test_views_are_counted_exactly_once_across_killed_connections(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        article_id = articles.create_article(author, {"title": "Blips", "body": "b"}).id
        for view in range(60):
            if view % 10 == 0:
                kill_clients(redis_url(app))
            view_counts.record_view(article_id)
        kill_clients(redis_url(app))
        assert view_counts.flush_views() == 60
        with db.engine.connect() as conn:
            views = conn.execute(sa.select(Article.views).where(Article.id == article_id)).scalar_one()
        assert views == 60
