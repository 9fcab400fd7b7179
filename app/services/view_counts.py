"""View counting that scales: gathered in each process, added to Redis in one round trip a
second, flushed to PostgreSQL in batches.

A web process counts views in memory (``ViewBuffer``) and sends them every
VIEW_FLUSH_SECONDS (1 s) as one pipeline of HINCRBYs, so a read costs no round trip of its
own; a process that stops gracefully sends what it holds on exit, and one that is killed
(SIGKILL, out of memory) loses at most that last second of its views. Those increments add
to a hash of pending deltas in the durable `redis` service. The beat task
``articles.flush_views`` renames that hash to a batch key (atomic: new views go to a fresh
hash), applies each article's delta with ``UPDATE ... SET views = views + delta`` and records
the batch id in ``view_flush_batches`` in the same transaction, then deletes the batch key.
A flush that dies half-way is finished by the next one, and a batch is never applied twice:
N reads give exactly N views.

Both go through the client that never resends a command that may have run
(``redis_counters``, see app.redis_clients): a resent ``HINCRBY`` would count a view twice, and
a resent ``RENAME`` would overwrite the batch it had just made with newer views. A view whose
connection dies in flight is lost (logged) rather than doubled; a flush that fails is retried
by the next tick.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from typing import cast

import redis
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import insert

from app.database import db
from app.models import Article
from app.models.view_flush import ViewFlushBatch

log = logging.getLogger(__name__)

PENDING = "newsdesk:views:pending"
BATCH_PREFIX = "newsdesk:views:batch:"


def _client() -> redis.Redis:
    return current_app.extensions["redis_counters"]


class ViewBuffer:
    """This process's views not yet in Redis, sent every ``seconds`` (at once when 0) by a
    background thread (a greenlet under gevent) started on first use in each process."""

    def __init__(self, client: redis.Redis, seconds: float) -> None:
        self.client = client
        self.seconds = seconds
        self.pending: dict[int, int] = {}
        self._lock = threading.Lock()
        self._pid = 0

    def add(self, article_id: int) -> None:
        """Count one read of an article; a Redis outage loses the count, never the request."""
        if self.seconds <= 0:
            self._send({article_id: 1})
            return
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            self.pending[article_id] = self.pending.get(article_id, 0) + 1

    def flush(self) -> None:
        """Send what is pending now (the thread does this every ``seconds``; exit does it once more)."""
        with self._lock:
            batch, self.pending = self.pending, {}
        if batch:
            self._send(batch)

    def _send(self, batch: dict[int, int]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for article_id, count in batch.items():
                pipe.hincrby(PENDING, str(article_id), count)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("%s views of %s articles not counted: %s", sum(batch.values()), len(batch), exc)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.pending = {}  # a forked copy of the parent's counts is the parent's to send
        threading.Thread(target=self._run, name="view-counts", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(self.seconds)
            self.flush()


def record_view(article_id: int) -> None:
    """Count one read of an article (sent within VIEW_FLUSH_SECONDS); never fails the request."""
    buffer: ViewBuffer = current_app.extensions["views"]
    buffer.add(article_id)


def _apply_batch(client: redis.Redis, batch_key: str) -> int:
    batch_id = batch_key.removeprefix(BATCH_PREFIX)
    pending = cast("dict[bytes, bytes]", client.hgetall(batch_key))  # a sync client
    deltas = {int(k): int(v) for k, v in pending.items()}
    inserted = db.session.execute(
        insert(ViewFlushBatch).values(batch_id=batch_id).on_conflict_do_nothing().returning(ViewFlushBatch.batch_id)
    ).first()
    if inserted is None:
        db.session.rollback()  # applied before; only the key was left behind
    else:
        for article_id, delta in sorted(deltas.items()):
            db.session.execute(
                sa.update(Article)
                .where(Article.id == article_id)
                .values(views=Article.views + delta, updated_at=Article.updated_at)
            )
        db.session.commit()
    client.delete(batch_key)
    return sum(deltas.values()) if inserted is not None else 0


def flush_views() -> int:
    """Move pending view counts into PostgreSQL; returns how many views were applied."""
    client = _client()
    applied = 0
    for leftover in client.scan_iter(match=BATCH_PREFIX + "*", count=100):
        applied += _apply_batch(client, leftover.decode() if isinstance(leftover, bytes) else leftover)
    batch_key = BATCH_PREFIX + uuid.uuid4().hex
    try:
        client.rename(PENDING, batch_key)
    except redis.ResponseError:  # no pending views
        return applied
    applied += _apply_batch(client, batch_key)
    return applied
