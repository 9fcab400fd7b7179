"""Background processing of an article: summary, keywords, status `ready`."""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from app import task_names, text
from app.database import db, on_commit, use_primary
from app.models import Article, ArticleTerm
from app.models.article import STATUS_PROCESSING, STATUS_READY
from app.services import outbox
from app.services.cache import invalidate_article
from app.services.queries import article_total

log = logging.getLogger(__name__)


def document_frequencies(terms: set[str]) -> dict[str, int]:
    if not terms:
        return {}
    rows = db.session.execute(
        sa.select(ArticleTerm.term, sa.func.count())
        .where(ArticleTerm.term.in_(sorted(terms)))
        .group_by(ArticleTerm.term),
    )
    return {term: count for term, count in rows}


def replace_terms(article_id: int, terms: set[str]) -> None:
    db.session.execute(sa.delete(ArticleTerm).where(ArticleTerm.article_id == article_id))
    if terms:
        db.session.execute(
            insert(ArticleTerm).on_conflict_do_nothing(),
            [{"article_id": article_id, "term": term} for term in sorted(terms)],
        )


@use_primary
def process_article(article_id: int) -> bool:
    """Summarise and tag one article. Idempotent: a second run leaves the row as it is.

    Every read is on the primary (the task may run before the replica has the row). The
    row is locked for the whole computation, so an edit committed meanwhile waits and
    then enqueues its own processing; an old body can never overwrite a newer one.
    Returns False when the article no longer exists.
    """
    article = db.session.execute(
        sa.select(Article).where(Article.id == article_id).with_for_update(of=Article)
    ).scalar_one_or_none()
    if article is None:
        db.session.rollback()
        log.info("article %s is gone; nothing to process", article_id)
        return False
    content = f"{article.title}\n\n{article.body}"
    terms = text.terms_of(content)
    replace_terms(article.id, terms)
    db.session.flush()
    n_docs = article_total()
    df = document_frequencies(terms)
    summary = text.summarize(article.body, df, n_docs)
    keywords = text.keywords(content, df, n_docs)
    changed = (article.summary, list(article.keywords or []), article.status) != (summary, keywords, STATUS_READY)
    if changed:
        db.session.execute(
            sa.update(Article)
            .where(Article.id == article.id)
            .values(summary=summary, keywords=keywords, status=STATUS_READY, updated_at=Article.updated_at)
        )
        on_commit(invalidate_article, article_id)
    db.session.commit()
    log.info("article %s processed", article_id, extra={"keywords": keywords, "changed": changed})
    return True


#: An article still `processing` this long after its last change has lost its task (its
#: retries all fell in a long database outage, say): the sweep sends the task again.
STUCK_AFTER = timedelta(minutes=2)


@use_primary
def requeue_stuck(limit: int = 100) -> int:
    """Send the processing task again (through the outbox) for articles left `processing`;
    processing is idempotent, so a task that was only late does no harm. Returns how many."""
    ids = (
        db.session.execute(
            sa.select(Article.id)
            .where(Article.status == STATUS_PROCESSING, Article.updated_at < sa.func.now() - STUCK_AFTER)
            .order_by(Article.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    for article_id in ids:
        outbox.add_task(task_names.PROCESS_ARTICLE, article_id)
    db.session.commit()
    if ids:
        log.warning("articles still processing after %s: task sent again", STUCK_AFTER, extra={"article_ids": ids})
    return len(ids)
