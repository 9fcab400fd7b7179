"""Outgoing mail. SMTP settings come from the environment; with no SMTP_HOST the message
is written to the log instead (development, demos, CI)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from app.config import Settings

log = logging.getLogger(__name__)


def build_message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def send(settings: Settings, to: str, subject: str, body: str) -> None:
    """Deliver one message; raises smtplib.SMTPException / OSError for the task to retry."""
    message = build_message(settings, to, subject, body)
    if not settings.smtp_host:
        log.info(
            "mail (no SMTP_HOST set, logged instead)", extra={"mail_to": to, "mail_subject": subject, "mail_body": body}
        )
        return
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)
    log.info("mail sent", extra={"mail_to": to, "mail_subject": subject})


def welcome(display_name: str) -> tuple[str, str]:
    subject = "Welcome to Newsdesk"
    body = (
        f"Hello {display_name},\n\n"
        "your Newsdesk account is ready. Write your first article from the Write page,\n"
        "or create an API key on your account page to publish from your own programs.\n\n"
        "-- Newsdesk\n"
    )
    return subject, body
