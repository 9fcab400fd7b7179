"""The transactional outbox against the real primary and Redis: a write and its task commit
together, the task is published right after the commit, a broker outage costs the write
nothing, and the relay publishes what the broker missed, each row once, with any number of
relays at once."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app, task_names
from app.database import db
from app.logs import request_id_var
from app.models import OutboxMessage, User
from app.services import accounts, articles, outbox
from app.services.errors import Conflict
from tests.integration.support import integration_settings, queued

EVERY_AGE = timedelta(0)


def outbox_rows() -> list[sa.Row[tuple[OutboxMessage]]]:
    """Every row, as committed (read on the primary, outside the session's transaction)."""
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(OutboxMessage).order_by(OutboxMessage.created_at)).all())


def queued_ids(app: Flask) -> list[str]:
    return [headers["id"] for headers in queued(app)]


def new_user() -> User:
    return User(email=f"{uuid.uuid4().hex}@example.com", display_name="U", password_hash="x")


def register() -> User:
    return accounts.register_user(f"{uuid.uuid4().hex}@example.com", "Writer", "long-enough-password")


def add_unpublished(count: int) -> list[str]:
    """``count`` rows as a broker outage leaves them: committed, never published."""
    ids = [uuid.uuid4() for _ in range(count)]
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(OutboxMessage),
            [{"id": id_, "task_name": task_names.PROCESS_ARTICLE, "args": [n]} for n, id_ in enumerate(ids)],
        )
    return [str(id_) for id_ in ids]


def test_the_task_row_is_written_in_the_transaction_of_the_write(app: Flask) -> None:
    with app.app_context():
        db.session.add(new_user())
        outbox.add_task(task_names.SEND_EMAIL, "someone@example.com", "Hi", "Body")
        db.session.flush()
        assert outbox_rows() == [], "invisible to others until the write commits"
        db.session.rollback()
        assert outbox_rows() == [] and queued(app) == [], "a rolled-back write leaves no task"

        db.session.add(new_user())
        outbox.add_task(task_names.SEND_EMAIL, "someone@example.com", "Hi", "Body")
        db.session.commit()
        [row] = outbox_rows()
    assert (row.task_name, row.args, row.attempts) == (task_names.SEND_EMAIL, ["someone@example.com", "Hi", "Body"], 1)
    assert row.published_at is not None, "published right after the commit and marked"
    [message] = queued(app)
    assert (message["task"], message["id"]) == (task_names.SEND_EMAIL, str(row.id)), "the row's id is the task id"


def test_a_rejected_registration_leaves_one_mail_task(app: Flask) -> None:
    with app.app_context():
        email = register().email
        with pytest.raises(Conflict):
            accounts.register_user(email.upper(), "Writer", "long-enough-password")
        rows = outbox_rows()
    assert [(row.task_name, row.args[0]) for row in rows] == [(task_names.SEND_EMAIL, email)]
    assert queued_ids(app) == [str(rows[0].id)]


def test_the_request_id_travels_with_the_task(app: Flask) -> None:
    token = request_id_var.set("req-outbox-1")
    try:
        with app.app_context():
            register()
    finally:
        request_id_var.reset(token)
    [message] = queued(app)
    assert message["request_id"] == "req-outbox-1"


def test_with_the_broker_down_a_write_commits_at_once_and_the_relay_sends_it_later(app: Flask) -> None:
    # Nothing listens on port 1: every connection to this broker is refused.
    broken = create_app(integration_settings(CELERY_BROKER_URL="redis://redis:1/6"))
    with broken.app_context():
        started = time.monotonic()
        author = register()
        article = articles.create_article(author, {"title": "Written during an outage", "body": "Body."})
        elapsed = time.monotonic() - started
        email, article_id = author.email, article.id
        # A correctness bound (the send fails fast instead of retrying), not a benchmark.
        assert elapsed < 2.5, f"two writes took {elapsed:.2f}s with the broker down"
        assert outbox.relay(min_age=EVERY_AGE) == 0, "the relay cannot send either, and says so"
        rows = outbox_rows()
    assert [(row.task_name, row.args[0], row.published_at) for row in rows] == [
        (task_names.SEND_EMAIL, email, None),
        (task_names.PROCESS_ARTICLE, article_id, None),
    ]
    # Each tried after its commit; the relay tried the oldest and stopped at the broker's refusal.
    assert [row.attempts for row in rows] == [2, 1]
    assert queued(app) == []

    with app.app_context():
        assert outbox.relay(min_age=timedelta(hours=1)) == 0, "rows younger than min_age are left alone"
        assert outbox.relay(min_age=EVERY_AGE) == 2
        assert outbox.relay(min_age=EVERY_AGE) == 0, "a published row is not sent again"
        assert all(row.published_at is not None for row in outbox_rows())
    assert queued_ids(app) == [str(row.id) for row in rows], "each once, in order, under its row's id"


def test_concurrent_relays_send_each_row_once(app: Flask) -> None:
    with app.app_context():
        ids = add_unpublished(200)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def run_relay() -> None:
        try:
            with app.app_context():
                start.wait()
                while outbox.relay(batch=10, min_age=EVERY_AGE):
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run_relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    sent = queued_ids(app)
    assert sorted(sent) == sorted(ids), "every row sent, none twice"


def test_a_relay_skips_rows_another_publisher_holds_instead_of_waiting(app: Flask) -> None:
    def relay_in_app() -> int:
        with app.app_context():
            return outbox.relay(min_age=EVERY_AGE)

    with app.app_context():
        held, free = add_unpublished(2)
    with ThreadPoolExecutor(1) as pool, app.app_context(), db.engine.connect() as other:
        # Another relay, in the middle of sending `held` (closing this connection releases it).
        other.execute(sa.select(OutboxMessage.id).where(OutboxMessage.id == held).with_for_update())
        assert pool.submit(relay_in_app).result(timeout=5) == 1, "sent the free row without waiting"
        assert queued_ids(app) == [free]
        other.rollback()  # that relay failed to send it
        assert relay_in_app() == 1
    assert queued_ids(app) == [free, held]


def test_purge_deletes_published_rows_past_the_retention(app: Flask) -> None:
    now = datetime.now(UTC)
    with app.app_context():
        old, recent, unpublished = add_unpublished(3)
        with db.engine.begin() as conn:
            for id_, published_at in ((old, now - timedelta(days=2)), (recent, now - timedelta(hours=1))):
                conn.execute(sa.update(OutboxMessage).where(OutboxMessage.id == id_).values(published_at=published_at))
        assert outbox.purge(retention=timedelta(days=1)) == 1
        assert sorted(str(row.id) for row in outbox_rows()) == sorted([recent, unpublished])


def test_articles_left_processing_are_sent_again_through_the_outbox(app: Flask) -> None:
    """A task whose retries all fell in a long outage leaves its article `processing`: the sweep
    (beat, every minute) sends it again; a fresh article's task is not sent twice."""
    from app.services import processing

    with app.app_context():
        author = register()
        stuck = articles.create_article(author, {"title": "Stuck", "body": "Lost its task."})
        fresh = articles.create_article(author, {"title": "Fresh", "body": "Being processed."})
        stuck_id, fresh_id = stuck.id, fresh.id
        with db.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE articles SET updated_at = now() - interval '10 minutes' WHERE id = :id"),
                {"id": stuck_id},
            )
        before = len(outbox_rows())
        assert processing.requeue_stuck() == 1
        added = outbox_rows()[before:]
    assert [(row.task_name, row.args) for row in added] == [(task_names.PROCESS_ARTICLE, [stuck_id])]
    assert fresh_id != stuck_id
