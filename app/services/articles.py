"""Writing articles: create, edit, delete. Each registers, before it commits, what must
follow the commit (invalidate the cached views of what changed), which the unit of work
(app.database.on_commit) runs once the commit succeeds, and writes the processing task to
the outbox (app.services.outbox) in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from app import task_names
from app.database import commit_as_written, db, on_commit
from app.models import Article, User
from app.models.article import STATUS_PROCESSING
from app.services import outbox
from app.services.cache import invalidate_article
from app.services.errors import Forbidden, NotFound
from app.services.validation import validate_article


def _changed(article_id: int, *, created: bool = False) -> None:
    """After commit: drop the article's cached views and (re)compute its summary and keywords."""
    on_commit(invalidate_article, article_id, created=created)
    outbox.add_task(task_names.PROCESS_ARTICLE, article_id)


def create_article(author: User, data: Mapping[str, Any]) -> Article:
    fields = validate_article(data)
    article = Article(author_id=author.id, status=STATUS_PROCESSING, **fields)
    db.session.add(article)
    db.session.flush()  # assigns the id
    # The article's own namespace too: a "not found" cached for this id must not outlive it.
    _changed(article.id, created=True)
    commit_as_written(article)
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
        _changed(article.id)
    commit_as_written(article)
    return article


def delete_article(author: User, article_id: int) -> None:
    article = _owned_for_update(author, article_id)
    db.session.delete(article)
    on_commit(invalidate_article, article_id)
    db.session.commit()
