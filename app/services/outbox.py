"""The transactional outbox: a write and the Celery tasks it implies commit together.

A service calls ``add_task(task_names.X, *args)`` while it writes. That inserts a row in
the ``outbox`` table in the same transaction, so a task exists if and only if its write
committed: no task is lost because the broker was down at commit time, and none is sent
for a write that rolled back. Then, as after-commit work (app.database.on_commit):

* the row is published at once and marked published, in a short transaction of its own;
* whatever the broker could not take then (Redis down or restarting) is published by the
  relay (``outbox.relay``, run by beat every 2 s) once the broker is back;
* published rows are deleted after a day (``outbox.purge``).

Both paths claim rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, so the after-commit
publish and any number of relays on any number of workers never send a row at the same
time. The row's id is the Celery task id: a row sent again (a crash between the send and
the commit that marks it) reaches its consumer as the same task, and consumers are
idempotent (see worker/tasks/). The send fails fast (no retry, a 0.25 s connect timeout,
broker connections of its own), so with Redis down a write still answers at once.
See microservices.io, "Pattern: Transactional outbox".
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery
from flask import Flask, current_app
from kombu.exceptions import LimitExceeded
from kombu.exceptions import OperationalError as BrokerOperationalError
from kombu.pools import ProducerPool
from sqlalchemy.exc import SQLAlchemyError

from app.database import db, on_commit
from app.logs import request_id_var
from app.metrics import OUTBOX_SENDS
from app.models import OutboxMessage

log = logging.getLogger(__name__)

#: The broker send: one connection attempt of at most this long (seconds), no retry...
CONNECT_TIMEOUT = 0.25
#: ...and at most this long for the broker to answer once connected.
SEND_TIMEOUT = 0.5
#: Broker connections (and producers) per process for publishing.
POOL_LIMIT = 10
#: The relay leaves younger rows to the after-commit publish of their own transaction.
RELAY_MIN_AGE = timedelta(seconds=2)
RELAY_BATCH = 500
RETENTION = timedelta(days=1)
PURGE_BATCH = 10_000

#: "The broker cannot take messages now": stop, and leave the remaining rows for later.
BROKER_UNAVAILABLE = (BrokerOperationalError, LimitExceeded, redis.RedisError, OSError)


class Publisher:
    """Sends outbox rows to the broker over producers of its own, which fail fast.

    Celery's own producer pool retries a connection for ``broker_connection_timeout`` and
    waits on the result backend for every task sent; a write must not wait for either.
    """

    def __init__(self, celery: Celery) -> None:
        self._celery = celery
        self._producers: ProducerPool | None = None
        self._lock = threading.Lock()

    def _producer_pool(self) -> ProducerPool:
        """Created on first use, so after gunicorn or Celery forked."""
        with self._lock:
            if self._producers is None:
                connection = self._celery.connection_for_write(
                    connect_timeout=CONNECT_TIMEOUT,
                    transport_options={
                        "max_retries": 0,
                        "socket_connect_timeout": CONNECT_TIMEOUT,
                        "socket_timeout": SEND_TIMEOUT,
                        "retry_on_timeout": False,
                    },
                )
                self._producers = ProducerPool(
                    connection.Pool(limit=POOL_LIMIT), Producer=self._celery.amqp.Producer, limit=POOL_LIMIT
                )
            return self._producers

    def send(self, message: sa.Row[Any]) -> None:
        """Send one outbox row as its task (raises when the broker cannot take it)."""
        with self._producer_pool().acquire(block=True, timeout=CONNECT_TIMEOUT) as producer:
            self._celery.send_task(
                message.task_name,
                args=message.args,
                kwargs=message.kwargs,
                task_id=str(message.id),
                headers=message.headers,
                producer=producer,
                retry=False,
                # Nobody waits for these results; not subscribing to them spares a Redis call.
                ignore_result=True,
                add_to_parent=False,
            )


def init_outbox(app: Flask) -> None:
    app.extensions["outbox"] = Publisher(app.extensions["celery"])


def add_task(name: str, *args: Any, **kwargs: Any) -> None:
    """Send task ``name`` (from app.task_names) if, and once, the current transaction commits.

    Arguments are JSON (ids, not ORM objects). The row is written in the current transaction
    and published right after its commit, or later by the relay.
    """
    request_id = request_id_var.get()
    message = OutboxMessage(
        id=uuid.uuid4(),
        task_name=name,
        args=list(args),
        kwargs=kwargs,
        headers={"request_id": request_id} if request_id else {},
    )
    db.session.add(message)
    on_commit(publish_committed, message.id)


def publish_committed(message_id: uuid.UUID) -> None:
    """After commit: publish the row now. If the broker or the database fails, the row stays
    unpublished for the relay; the write it belongs to has succeeded either way."""
    try:
        _publish(OutboxMessage.id == message_id, limit=1, via="after_commit")
    except SQLAlchemyError as exc:
        log.warning("outbox row %s left for the relay: %s", message_id, exc)


def relay(batch: int = RELAY_BATCH, min_age: timedelta = RELAY_MIN_AGE) -> int:
    """Publish up to ``batch`` unpublished rows older than ``min_age``, oldest first; returns
    how many were sent. Safe to run on several workers at once."""
    sent = _publish(OutboxMessage.created_at < sa.func.now() - min_age, limit=batch, via="relay")
    if sent:
        log.info("outbox relay published %d task(s)", sent)
    return sent


def purge(retention: timedelta = RETENTION, batch: int = PURGE_BATCH) -> int:
    """Delete up to ``batch`` rows published more than ``retention`` ago; returns how many."""
    expired = (
        sa.select(OutboxMessage.id)
        .where(OutboxMessage.published_at < sa.func.now() - retention)
        .order_by(OutboxMessage.published_at)
        .limit(batch)
    )
    with db.engine.begin() as conn:
        deleted = conn.execute(sa.delete(OutboxMessage).where(OutboxMessage.id.in_(expired))).rowcount
    if deleted:
        log.info("outbox purge deleted %d published row(s)", deleted)
    return deleted


def _publish(condition: sa.ColumnElement[bool], limit: int, via: str) -> int:
    """Claim the unpublished rows matching ``condition`` (skipping rows another publisher
    holds), send them in order until the broker fails, and mark what was sent, in one
    short transaction. Returns how many rows were sent."""
    publisher: Publisher = current_app.extensions["outbox"]
    with db.engine.begin() as conn:
        rows = conn.execute(
            sa.select(
                OutboxMessage.id,
                OutboxMessage.task_name,
                OutboxMessage.args,
                OutboxMessage.kwargs,
                OutboxMessage.headers,
            )
            .where(OutboxMessage.published_at.is_(None), condition)
            .order_by(OutboxMessage.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        tried: list[uuid.UUID] = []
        sent: list[uuid.UUID] = []
        for row in rows:
            tried.append(row.id)
            try:
                publisher.send(row)
            except BROKER_UNAVAILABLE as exc:
                OUTBOX_SENDS.labels(via, "failed").inc()
                log.warning("broker unavailable, outbox row %s left for the relay: %s", row.id, exc)
                break
            except Exception:
                # Not the broker: this row alone cannot be sent (it is retried, but blocks no other).
                OUTBOX_SENDS.labels(via, "failed").inc()
                log.exception("could not publish outbox row %s (%s)", row.id, row.task_name)
                continue
            OUTBOX_SENDS.labels(via, "sent").inc()
            sent.append(row.id)
        if tried:
            conn.execute(
                sa.update(OutboxMessage)
                .where(OutboxMessage.id.in_(tried))
                .values(
                    attempts=OutboxMessage.attempts + 1,
                    published_at=sa.case((OutboxMessage.id.in_(sent), sa.func.now()), else_=None),
                )
            )
    return len(sent)
