"""Account tasks: mail."""

from __future__ import annotations

import smtplib

import redis
from celery import shared_task
from flask import current_app

from app import task_names
from app.config import RETRY_BACKOFF_MAX, TASK_TIME_LIMIT
from app.services import mail


@shared_task(
    name=task_names.SEND_EMAIL,
    bind=True,
    autoretry_for=(smtplib.SMTPException, OSError, redis.RedisError),
    retry_backoff=5,
    # Countdowns stay under the visibility timeout (app.config); more of them keep an SMTP
    # outage of a few minutes covered.
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=20,
)
def send_email(self, to: str, subject: str, body: str) -> None:  # noqa: ANN001 - bound task
    """Send one message, at most once per task id.

    The task's id is claimed in Redis first (SET NX), so that two copies of it (the outbox relay
    and the commit hook both sent it; a redelivery) never both mail the person: the one that
    finds the claim stops. The claim lasts TASK_TIME_LIMIT, less than the broker's visibility
    timeout: a copy redelivered because its worker died before sending finds it expired and
    sends. A failure to send releases it for the retry; a success makes it a mark for a week.
    (A worker lost between the SMTP server's acceptance and the mark can still mean a second
    mail on redelivery: at least once, not exactly once, across that gap.)
    """
    client = current_app.extensions["redis"]
    mark = f"newsdesk:mail:sent:{self.request.id}"
    if not client.set(mark, "sending", nx=True, ex=TASK_TIME_LIMIT):
        return  # sent already, or another copy is sending it now
    try:
        mail.send(current_app.extensions["settings"], to, subject, body)
    except BaseException:
        client.delete(mark)
        raise
    client.set(mark, "sent", ex=7 * 24 * 3600)
