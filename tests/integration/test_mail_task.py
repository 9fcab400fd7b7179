"""The welcome mail goes out once per task id, whichever copies of the task run (the commit hook
and the outbox relay may both send it; a worker's death redelivers it)."""

from __future__ import annotations

import smtplib
import threading
import uuid

import pytest
from flask import Flask

from app.services import mail
from worker.tasks.accounts import send_email


def run_copy(app: Flask, task_id: str) -> None:
    """One copy of the task, as a worker runs it (its id on the request)."""
    with app.app_context():
        send_email.push_request(id=task_id)
        try:
            send_email.run("reader@example.com", "Welcome", "Hello.")
        finally:
            send_email.pop_request()


def test_copies_of_one_mail_task_mail_once(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    started, release = threading.Event(), threading.Event()

    def slow_send(settings: object, to: str, subject: str, body: str) -> None:
        started.set()
        release.wait(5)  # the second copy runs while the first is sending
        sent.append(to)

    monkeypatch.setattr(mail, "send", slow_send)
    task_id = str(uuid.uuid4())
    first = threading.Thread(target=run_copy, args=(app, task_id))
    first.start()
    assert started.wait(5)
    run_copy(app, task_id)  # a concurrent copy: finds the claim, sends nothing
    release.set()
    first.join(5)
    run_copy(app, task_id)  # a later copy: finds the mark
    assert sent == ["reader@example.com"]


def test_a_failed_send_leaves_the_mail_to_the_retry(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def flaky_send(settings: object, to: str, subject: str, body: str) -> None:
        attempts.append(to)
        if len(attempts) == 1:
            raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(mail, "send", flaky_send)
    task_id = str(uuid.uuid4())
    with pytest.raises(smtplib.SMTPServerDisconnected):
        run_copy(app, task_id)
    run_copy(app, task_id)
    run_copy(app, task_id)
    assert attempts == ["reader@example.com", "reader@example.com"]
