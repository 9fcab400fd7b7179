"""Account tasks: mail."""

from __future__ import annotations

import smtplib

from celery import shared_task
from flask import current_app

from app import task_names
from app.config import RETRY_BACKOFF_MAX
from app.services import mail


@shared_task(
    name=task_names.SEND_EMAIL,
    bind=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=5,
    # Countdowns stay under the visibility timeout (app.config); more of them keep an SMTP
    # outage of a few minutes covered.
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=20,
)
def send_email(self, to: str, subject: str, body: str) -> None:  # noqa: ANN001 - bound task
    """Send one message, at most once per task id: a redelivered task (worker lost after the
    SMTP server accepted it) finds the mark and does not mail the person twice."""
    client = current_app.extensions["redis"]
    mark = f"newsdesk:mail:sent:{self.request.id}"
    if client.exists(mark):
        return
    mail.send(current_app.extensions["settings"], to, subject, body)
    client.set(mark, 1, ex=7 * 24 * 3600)
