"""Article tasks: processing (summary, keywords) and the view-count flush."""

from __future__ import annotations

from celery import shared_task
from sqlalchemy.exc import DBAPIError

from app.services import processing, views


@shared_task(
    name="articles.process",
    autoretry_for=(DBAPIError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def process(article_id: int) -> bool:
    """Summary and keywords for one article; safe to run twice (see processing.process_article)."""
    return processing.process_article(article_id)


@shared_task(name="articles.flush_views", ignore_result=True)
def flush_views() -> int:
    """Apply pending view counts (scheduled by beat every few seconds)."""
    return views.flush_views()
