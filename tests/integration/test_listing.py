"""The listing at any depth (keyset pagination), its exact counter, and anonymous responses
cached whole: in the shared cache, then in the process's memory, dropped on invalidation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db, use_primary
from app.database.wal import primary_lsn, replica_position
from app.models import Article, ArticleTotals, User
from app.response_cache import ResponseCache
from app.services import accounts, articles, queries, view_counts
from app.services.view_counts import PENDING, ViewBuffer
from tests.polling import wait_until


def seed(app: Flask, count: int, *, same_moment: bool = False) -> list[int]:
    """``count`` articles; with ``same_moment`` they share one published_at (only ids order them)."""
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [
            {"author_id": author.id, "title": f"T{i}", "body": "b", **({"published_at": moment} if same_moment else {})}
            for i in range(count)
        ]
        ids = list(db.session.execute(sa.insert(Article).returning(Article.id), rows).scalars())
        db.session.commit()
        with db.engine.connect() as conn:
            written = primary_lsn(conn)

        def replayed() -> bool:
            with db.engines["replica"].connect() as conn:
                return (replica_position(conn).replay_lsn or 0) >= written

        wait_until(replayed, timeout=20, message="the replica to replay the seeded articles")
        return ids


def total_row(app: Flask) -> int:
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(sa.select(ArticleTotals.articles)).scalar_one()


def test_following_cursors_visits_every_article_once_in_order(app: Flask) -> None:
    ids = seed(app, 23, same_moment=True) + seed(app, 4)
    expected = [
        i
        for _, i in sorted(
            ((moment, i) for i, moment in published(app, ids).items()), key=lambda pair: pair, reverse=True
        )
    ]
    with app.app_context():
        seen: list[int] = []
        listing = queries.list_articles(5)
        assert listing.total == 27 and listing.pages == 6 and listing.page == 1
        while True:
            seen += [item["id"] for item in listing.items]
            if listing.next_cursor is None:
                break
            after = queries.Cursor.decode(listing.next_cursor)
            assert after is not None
            listing = queries.list_articles(5, after=after)
            assert listing.total is None and listing.page is None, "a cursor page carries no count"
    assert seen == expected


def published(app: Flask, ids: list[int]) -> dict[int, datetime]:
    with app.app_context(), db.engine.connect() as conn:
        return dict(conn.execute(sa.select(Article.id, Article.published_at).where(Article.id.in_(ids))).all())


def test_the_counter_is_exact_through_inserts_deletes_and_truncate(app: Flask, owner_db: sa.Engine) -> None:
    ids = seed(app, 7)
    assert total_row(app) == 7
    with app.app_context():
        db.session.execute(sa.delete(Article).where(Article.id.in_(ids[:3])))
        db.session.rollback()
    assert total_row(app) == 7, "a rolled-back delete changes nothing"
    with app.app_context():
        db.session.execute(sa.delete(Article).where(Article.id.in_(ids[:3])))
        db.session.commit()
        assert queries.list_articles(20).total == 4
    with owner_db.begin() as conn:  # TRUNCATE is the owner's (the app role may only DELETE)
        conn.execute(sa.text("TRUNCATE articles CASCADE"))
    assert total_row(app) == 0


def test_the_index_serves_a_deep_cursor_without_walking_the_rows_before_it(app: Flask) -> None:
    seed(app, 50)
    with app.app_context(), db.engine.begin() as conn:
        # 50 rows are cheaper to scan than to look up, so the planner is told not to: the point
        # is that the row comparison is an index condition (it starts the scan at the cursor).
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        conn.execute(sa.text("SET LOCAL enable_sort = off"))
        plan = "\n".join(
            conn.execute(
                sa.text(
                    "EXPLAIN SELECT id FROM articles WHERE (published_at, id) < (now(), 10) "
                    "ORDER BY published_at DESC, id DESC LIMIT 21"
                )
            ).scalars()
        )
    assert "ix_articles_published_at_id" in plan and "Index Cond" in plan, plan


def test_views_are_gathered_and_sent_in_one_round_trip(app: Flask) -> None:
    with app.app_context():
        client = app.extensions["redis_counters"]
        buffer = ViewBuffer(client, seconds=60)
        for article_id in (1, 1, 2, 1):
            buffer.add(article_id)
        assert client.hgetall(PENDING) == {}, "nothing sent before the flush"
        buffer.flush()
        assert client.hgetall(PENDING) == {b"1": b"3", b"2": b"1"}
        buffer.flush()
        assert client.hgetall(PENDING) == {b"1": b"3", b"2": b"1"}, "sent once"


def anonymous_get(client: FlaskClient, path: str) -> tuple[str, str]:
    response = client.get(path)
    assert response.status_code == 200, response.status
    return response.headers["X-Cache"], response.get_data(as_text=True)


def test_anonymous_pages_come_from_memory_until_a_write_changes_them(app: Flask) -> None:
    seed(app, 3)
    client = app.test_client()
    memory: ResponseCache = app.extensions["response_cache"]
    assert anonymous_get(client, "/")[0] == "miss"
    wait_until(lambda: memory.pages.live, timeout=10, message="the cache subscription to be live")
    # The first lookup may have raced the subscription; from now on a copy is kept.
    anonymous_get(client, "/")
    assert anonymous_get(client, "/")[0] == "hit"

    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        title = f"Breaking {uuid.uuid4().hex}"
        articles.create_article(author, {"title": title, "body": "b"})
    assert title in anonymous_get(client, "/")[1], (
        "the very next read shows it: the invalidation reached this process first"
    )
    assert anonymous_get(client, "/")[0] == "hit"


def test_a_cursor_page_survives_a_new_article_but_not_an_edit(app: Flask) -> None:
    seed(app, 30)
    client = app.test_client()
    memory: ResponseCache = app.extensions["response_cache"]
    anonymous_get(client, "/")
    wait_until(lambda: memory.pages.live, timeout=10, message="the cache subscription to be live")
    with app.app_context(), use_primary:
        cursor = queries.list_articles(20).next_cursor
        author_id = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password").id
    older = f"/?cursor={cursor}"
    anonymous_get(client, older)
    assert anonymous_get(client, older)[0] == "hit"
    with app.app_context(), use_primary:
        created = articles.create_article(db.session.get_one(User, author_id), {"title": "New", "body": "b"}).id
    assert anonymous_get(client, older)[0] == "hit", "a new article is newer than any cursor"
    with app.app_context(), use_primary:
        articles.update_article(db.session.get_one(User, author_id), created, {"title": "Edited"})
    assert anonymous_get(client, older)[0] != "hit", "an edit may change any page"


def test_a_view_from_memory_is_still_counted(app: Flask) -> None:
    (article_id,) = seed(app, 1)
    client = app.test_client()
    memory: ResponseCache = app.extensions["response_cache"]
    anonymous_get(client, f"/articles/{article_id}")
    wait_until(lambda: memory.pages.live, timeout=10, message="the cache subscription to be live")
    sources = [anonymous_get(client, f"/articles/{article_id}")[0] for _ in range(5)]
    assert sources[-1] == "hit"
    with app.app_context():
        assert view_counts.flush_views() == 6


def test_a_key_kept_in_memory_is_dropped_the_moment_it_is_revoked(app: Flask) -> None:
    client = app.test_client()
    memory: ResponseCache = app.extensions["response_cache"]
    anonymous_get(client, "/")
    wait_until(lambda: memory.pages.live, timeout=10, message="the cache subscription to be live")
    with app.app_context():
        user = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Keyholder", "long-enough-password")
        key, plaintext = accounts.create_api_key(user, "script")
        user_id, key_id = user.id, key.id
    auth = {"Authorization": f"Bearer {plaintext}"}
    memory.pages.keys_changed_at -= 60  # as if the last revocation was long ago
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    assert len(memory.pages.keys) == 1, "kept after the first check"
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    written = client.post("/api/v1/articles", json={"title": "Kept key", "body": "b"}, headers=auth)
    assert written.status_code == 201, "a write commits; the kept key must outlive that commit"
    assert client.get("/api/v1/articles", headers=auth).status_code == 200
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    with app.app_context(), use_primary:
        accounts.revoke_api_key(db.session.get_one(User, user_id), key_id)
    assert memory.pages.keys == {}, "the revocation's announcement dropped it"
    # Checked again every time now, on a replica at most KEY_CHECK_MAX_LAG_SECONDS behind: the
    # revocation's bound (a replica a few milliseconds behind may still answer 200 at once).
    wait_until(
        lambda: client.get("/api/v1/me", headers=auth).status_code == 401,
        timeout=accounts.KEY_CHECK_MAX_LAG_SECONDS + 1,
        message="the revoked key refused within the replica's allowed lag",
    )
