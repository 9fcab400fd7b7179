"""View counting that scales: one Redis HINCRBY per read, flushed to PostgreSQL in batches.

Reads add to a hash of pending deltas in the durable `redis` service. The beat task
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

import logging
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


def record_view(article_id: int) -> None:
    """Count one read of an article; a Redis outage loses the count, never the request."""
    try:
        _client().hincrby(PENDING, str(article_id), 1)
    except redis.RedisError as exc:
        log.warning("view of article %s not counted: %s", article_id, exc)


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
