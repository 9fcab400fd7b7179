"""Liveness of replicas and workers as seen across the stack: sorted sets in the `redis` service.

Each web process records its replica's name at most every HEARTBEAT_EVERY seconds (the
compose healthcheck alone calls every replica every 5 s); each Celery worker records itself
from a timer. `/ops` lists who was seen within SEEN_WITHIN seconds.
"""

from __future__ import annotations

import logging
import time

import redis

log = logging.getLogger(__name__)

REPLICAS = "newsdesk:heartbeats:web"
WORKERS = "newsdesk:heartbeats:worker"
HEARTBEAT_EVERY = 5.0
SEEN_WITHIN = 30.0


def beat(client: redis.Redis, kind: str, name: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    try:
        pipe = client.pipeline(transaction=False)
        pipe.zadd(kind, {name: now})
        pipe.zremrangebyscore(kind, 0, now - 24 * 3600)
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("heartbeat not recorded: %s", exc)


class Heartbeat:
    """One process's heartbeat as ``name`` in ``kind``, sent at most every HEARTBEAT_EVERY
    seconds however often ``beat`` is called (cheap enough to call per request)."""

    def __init__(self, client: redis.Redis, kind: str, name: str) -> None:
        self.client = client
        self.kind = kind
        self.name = name
        self._last = float("-inf")

    def beat(self) -> None:
        now = time.time()
        if now - self._last >= HEARTBEAT_EVERY:
            self._last = now
            beat(self.client, self.kind, self.name, now)


def seen(client: redis.Redis, kind: str, within: float = SEEN_WITHIN) -> list[tuple[str, float]]:
    """(name, seconds since last beat) of everyone seen within ``within`` seconds, newest first."""
    now = time.time()
    rows = client.zrevrangebyscore(kind, "+inf", now - within, withscores=True)
    return [(name.decode() if isinstance(name, bytes) else name, now - score) for name, score in rows]
