"""Article tasks: processing (summary, keywords) and the view-count flush."""

from __future__ import annotations

from celery import shared_task
from sqlalchemy.exc import DBAPIError

from app import task_names
from app.config import RETRY_BACKOFF_MAX
from app.services import processing, view_counts
from app.services.errors import ReadOnly

#: Pending view counts reach PostgreSQL every 2 s (an expired tick is dropped, not queued up);
#: articles whose processing was lost are sent again every minute.
BEAT_SCHEDULE = {
    "flush-views": {"task": task_names.FLUSH_VIEWS, "schedule": 2.0, "options": {"expires": 10}},
    "requeue-stuck-articles": {
        "task": task_names.REQUEUE_STUCK_ARTICLES,
        "schedule": 60.0,
        "options": {"expires": 50},
    },
}


@shared_task(
    name=task_names.PROCESS_ARTICLE,
    # The primary unreachable (a connection error, or its breaker open: ReadOnly): try again,
    # for a few minutes; an article whose retries all fail is sent again by requeue_stuck.
    autoretry_for=(DBAPIError, ReadOnly),
    retry_backoff=2,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=20,
)
def process(article_id: int) -> bool:
    """Summary and keywords for one article; safe to run twice (see processing.process_article)."""
    return processing.process_article(article_id)


@shared_task(name=task_names.FLUSH_VIEWS, ignore_result=True)
def flush_views() -> int:
    """Apply pending view counts (scheduled by beat every few seconds)."""
    return view_counts.flush_views()


@shared_task(name=task_names.REQUEUE_STUCK_ARTICLES, ignore_result=True)
def requeue_stuck() -> int:
    """Send the processing of articles left `processing` again (scheduled by beat every minute)."""
    return processing.requeue_stuck()
