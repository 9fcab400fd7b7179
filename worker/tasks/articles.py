"""Article tasks: processing (summary, keywords) and the view-count flush."""

from __future__ import annotations

from celery import shared_task
from sqlalchemy.exc import DBAPIError

from app import task_names
from app.config import RETRY_BACKOFF_MAX
from app.services import processing, view_counts

#: Pending view counts reach PostgreSQL every 2 s (an expired tick is dropped, not queued up).
BEAT_SCHEDULE = {
    "flush-views": {"task": task_names.FLUSH_VIEWS, "schedule": 2.0, "options": {"expires": 10}},
}


@shared_task(
    name=task_names.PROCESS_ARTICLE,
    autoretry_for=(DBAPIError,),
    retry_backoff=2,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=5,
)
def process(article_id: int) -> bool:
    """Summary and keywords for one article; safe to run twice (see processing.process_article)."""
    return processing.process_article(article_id)


@shared_task(name=task_names.FLUSH_VIEWS, ignore_result=True)
def flush_views() -> int:
    """Apply pending view counts (scheduled by beat every few seconds)."""
    return view_counts.flush_views()
