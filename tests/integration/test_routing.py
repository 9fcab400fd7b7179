"""Read/write routing against the real primary and streaming replica."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask, g

from app import create_app
from app.database import db
from app.database.routing import PRIMARY, REPLICA, current_router
from app.database.wal import ReplicaPosition
from app.models import Article
from app.services import accounts, articles, queries
from tests.integration.support import integration_settings, replica_replay_paused
from tests.polling import wait_until


def replica_conn():
    return db.engines["replica"].connect()


def test_read_after_write_goes_to_primary_until_the_replica_has_replayed_it(app: Flask) -> None:
    with app.test_request_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        g.writer = f"user:{author.id}"
        router = current_router()
        # The replica has replayed the registration before we pause it.
        wait_until(lambda: router.decide(g.writer).target == REPLICA, 10, message="replica caught up")

        with replica_replay_paused():
            article = articles.create_article(author, {"title": "Fresh", "body": "Just written."})
            decision = router.decide(g.writer)
            assert (decision.target, decision.reason) == (PRIMARY, "replica_behind_writer")
            # The writer sees the article (primary); the paused replica does not have it yet.
            db.session.rollback()
            assert queries.get_article(article.id)["title"] == "Fresh"
            with replica_conn() as conn:
                assert conn.execute(sa.select(Article.id).where(Article.id == article.id)).first() is None
            # Someone who did not write reads the replica.
            assert router.decide(None).target == REPLICA

        decision = wait_until(
            lambda: (d := router.decide(g.writer)).target == REPLICA and d,
            10,
            message="writer back on the replica after replay",
        )
        assert decision.reason == "replica_caught_up"


def test_a_transaction_that_wrote_stays_on_the_primary(app: Flask) -> None:
    with app.test_request_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        wait_until(lambda: current_router().decide(None).target == REPLICA, 10)
        db.session.rollback()
        read = sa.select(Article)
        assert db.session.get_bind(clause=read) is db.engines["replica"]
        db.session.add(Article(author_id=author.id, title="t", body="b"))
        db.session.flush()
        assert db.session.get_bind(clause=read) is db.engines[None]
        db.session.rollback()


def test_reads_succeed_when_the_replica_is_unreachable(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        articles.create_article(author, {"title": "Still readable", "body": "Body."})
    settings = integration_settings(
        DATABASE_REPLICA_URL=integration_settings().database_url.replace("@db:5432", "@db:1")
    )
    broken = create_app(settings)
    with broken.test_request_context():
        page = queries.list_articles(20)
        assert [item["title"] for item in page.items] == ["Still readable"]
        decision = current_router().decide(None)
        assert (decision.target, decision.reason) == (PRIMARY, "replica_unavailable")


def test_a_replica_failing_under_a_read_is_retried_on_the_primary(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        article_id = articles.create_article(author, {"title": "Retried", "body": "Body."}).id
    settings = integration_settings(
        DATABASE_REPLICA_URL=integration_settings().database_url.replace("@db:5432", "@db:1"),
        REPLICA_LSN_CACHE_MS="10000",
    )
    broken = create_app(settings)
    with broken.test_request_context():
        monitor = current_router().monitor
        # The monitor still believes in a healthy replica (a cached probe from before it died).
        monitor._position = ReplicaPosition(True, 2**62, 2**62, 0.0, True)
        monitor._fetched_at = monitor._clock()
        assert current_router().decide(None).target == REPLICA
        assert queries.get_article(article_id)["title"] == "Retried"
        assert current_router().decide(None).reason == "replica_unavailable"
