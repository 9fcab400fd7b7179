"""`articles.process`: a real summary and keywords, and idempotence."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.models import Article
from app.services import accounts, articles, processing
from worker.tasks.articles import process

TEXT = """The city council approved a plan to build flood defences along the river on Monday.

Engineers said the flood defences would protect ten thousand homes from rising water. The plan includes pumps,
walls and a new reservoir upstream. Critics argued that the reservoir would flood farmland in the valley.

The council will fund the flood defences with a bond. A public consultation on the reservoir begins next month.
Residents can read the engineering report at the library."""


def row(article_id: int) -> tuple:
    with db.engine.connect() as conn:
        return tuple(conn.execute(sa.select(Article.__table__).where(Article.id == article_id)).one())


def test_process_writes_summary_keywords_and_status(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        other = articles.create_article(author, {"title": "Elections", "body": "Voters went to the polls."})
        article = articles.create_article(author, {"title": "Flood defences approved", "body": TEXT})
        assert process.run(other.id) is True
        assert process.run(article.id) is True
        db.session.rollback()
        stored = db.session.get(Article, article.id)
        assert stored.status == "ready"
        assert 5 <= len(stored.keywords) <= 10
        assert {"flood", "defences", "reservoir"} <= set(stored.keywords)
        assert not {"the", "and", "would", "on"} & set(stored.keywords)
        sentences = [s for s in stored.summary.split(". ") if s]
        assert 2 <= len(sentences) <= 3
        assert stored.summary.split(". ")[0] in TEXT


def test_processing_twice_changes_nothing(app: Flask) -> None:
    with app.app_context():
        author = accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")
        article = articles.create_article(author, {"title": "Flood defences approved", "body": TEXT})
        processing.process_article(article.id)
        first = row(article.id)
        processing.process_article(article.id)
        assert row(article.id) == first


def test_processing_a_deleted_article_is_a_no_op(app: Flask) -> None:
    with app.app_context():
        assert processing.process_article(987654321) is False
