"""Exact view counting: Redis increments flushed as one UPDATE per article."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from app.database import db
from app.models import Article
from app.services import accounts, articles, view_counts


def views_of(ids: list[int]) -> list[int]:
    with db.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(Article.id, Article.views).where(Article.id.in_(ids))).all())
    return [rows[i] for i in ids]


def test_a_thousand_views_become_one_update_per_article(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        ids = [articles.create_article(author, {"title": f"A{i}", "body": "b"}).id for i in range(3)]
        for article_id, n in zip(ids, (500, 300, 200), strict=True):
            for _ in range(n):
                view_counts.record_view(article_id)

        updates: list[str] = []

        def count(conn, cursor, statement, *args) -> None:
            if statement.lstrip().upper().startswith("UPDATE ARTICLES"):
                updates.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert view_counts.flush_views() == 1000
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert len(updates) == 3
        assert all("views + " in u for u in updates), "an increment, not a read-modify-write"
        assert views_of(ids) == [500, 300, 200]
        assert view_counts.flush_views() == 0
        assert views_of(ids) == [500, 300, 200]


def test_a_batch_is_never_applied_twice(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        article_id = articles.create_article(author, {"title": "A", "body": "b"}).id
        client = app.extensions["redis"]
        for _ in range(7):
            view_counts.record_view(article_id)
        # A flush that died after renaming: the next flush finishes it.
        batch = view_counts.BATCH_PREFIX + "crashed"
        client.rename(view_counts.PENDING, batch)
        assert view_counts.flush_views() == 7
        # A flush that died after committing but before deleting the key: not counted again.
        client.hset(batch, str(article_id), 7)
        assert view_counts.flush_views() == 0
        assert views_of([article_id]) == [7]
