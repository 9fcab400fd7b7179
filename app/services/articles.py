"""Writing articles: create, edit, delete. Each commits, then enqueues processing and
invalidates the cached views of what changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Article, User
from app.models.article import STATUS_PROCESSING
from app.services import cache as article_cache
from app.services.errors import Forbidden, NotFound
from app.services.validation import validate_article
from app.tasks import enqueue

PROCESS_TASK = "articles.process"


def create_article(author: User, data: Mapping[str, Any]) -> Article:
    fields = validate_article(data)
    article = Article(author_id=author.id, status=STATUS_PROCESSING, **fields)
    db.session.add(article)
    db.session.commit()
    # The article's own namespace too: a "not found" cached for this id must not outlive it.
    article_cache.invalidate_article(article.id)
    enqueue(PROCESS_TASK, article.id)
    return article


def _owned_for_update(author: User, article_id: int) -> Article:
    """The article, locked for this transaction, if ``author`` wrote it (404 / 403 otherwise)."""
    article = db.session.execute(
        sa.select(Article).where(Article.id == article_id).with_for_update(of=Article)
    ).scalar_one_or_none()
    if article is None:
        raise NotFound(f"no article {article_id}")
    if article.author_id != author.id:
        db.session.rollback()
        raise Forbidden("only the author may change this article")
    return article


def update_article(author: User, article_id: int, data: Mapping[str, Any]) -> Article:
    fields = validate_article(data, partial=True)
    article = _owned_for_update(author, article_id)
    changed = any(getattr(article, name) != value for name, value in fields.items())
    if changed:
        for name, value in fields.items():
            setattr(article, name, value)
        article.status = STATUS_PROCESSING
    db.session.commit()
    if changed:
        article_cache.invalidate_article(article.id)
        enqueue(PROCESS_TASK, article.id)
    return article


def delete_article(author: User, article_id: int) -> None:
    article = _owned_for_update(author, article_id)
    db.session.delete(article)
    db.session.commit()
    article_cache.invalidate_article(article_id)
