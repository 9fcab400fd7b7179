"""The shared read cache (the `cache` Redis): article detail, list pages and popular.

Correctness after a write comes from versioned namespaces rather than key scans: every
cached value lives under ``c:<namespace>:<version>:<name>``. A write bumps the version of
what it changed (``lists`` for every listing, ``article:<id>`` for one article) and records
the primary's WAL position with it; the next reader anywhere misses, and refills the entry
only from a database that has replayed at least that position (the replica if it has caught
up, else the primary). So a lagging replica can never put the old value back. One exception:
with the primary down and the replica short of that position, the replica's value is served
(the best there is, rather than an error) and kept only for STALE_TTL seconds, so it is
replaced within seconds of the primary's return.

Stampede protection: one request per key recomputes (a short NX lock); the others serve the
previous value while it is within its grace period, or wait briefly for the new one. TTLs
carry jitter so that entries filled together do not expire together.

If the cache is unreachable, reads go to the database (slower, never an error), and the
process stops trying the cache for a few seconds (a breaker) instead of paying a timeout
per request.

``ReadCache`` holds the client, the breaker and the Lua script of one app
(``app.extensions["cache"]``); the functions below use the current app's.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

import redis
from flask import Flask, current_app

from app.breaker import Breaker
from app.database import committed_position, db, reading_at_least
from app.database.wal import UNKNOWN_LSN, primary_lsn
from app.metrics import CACHE_REQUESTS

log = logging.getLogger(__name__)
T = TypeVar("T")

LISTS = "lists"
DETAIL_TTL = 60.0
LIST_TTL = 30.0
POPULAR_TTL = 10.0
#: Soft TTL of a value refilled, with the primary down, from a replica short of the invalidation.
STALE_TTL = 2.0
#: How long past its soft expiry a value may still be served while one request refreshes it.
GRACE = 30.0
JITTER = 0.1
LOCK_MS = 5000
WAIT_FOR_FILL = 1.0
BREAKER_SECONDS = 5.0

# One round trip for a lookup: the namespace's version and invalidation LSN, and the value
# stored under that version. (Each round trip costs the replica CPU in the network stack.)
_READ = """
local state = redis.call('HMGET', KEYS[1], 'version', 'lsn')
local version = state[1] or '0'
return {version, state[2] or '0', redis.call('GET', ARGV[1] .. version .. ':' .. ARGV[2])}
"""


def article_namespace(article_id: int) -> str:
    return f"article:{article_id}"


def jittered(ttl: float) -> float:
    return ttl * random.uniform(1 - JITTER, 1 + JITTER)


def _key(namespace: str, version: int, name: str) -> str:
    return f"c:{namespace}:{version}:{name}"


class ReadCache:
    """Versioned, stampede-protected, WAL-gated cache entries in one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        breaker: Breaker,
        refill_at: Callable[[int], AbstractContextManager[Callable[[], bool]]],
    ) -> None:
        """``refill_at(lsn)`` wraps a refill: its reads must see WAL position ``lsn``; it yields
        ``saw_all()``, False after the reads if they could not (app.database.reading_at_least)."""
        self.client = client
        self.breaker = breaker
        self._refill_at = refill_at
        self._read_script = client.register_script(_READ)

    def cached(self, namespace: str, name: str, ttl: float, compute: Callable[[], T]) -> T:
        """``compute()``'s JSON-serialisable value, from the cache when fresh."""
        if not self.breaker.closed:
            CACHE_REQUESTS.labels("miss").inc()
            return compute()
        try:
            version, min_lsn, raw = self._read(namespace, name)
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            CACHE_REQUESTS.labels("miss").inc()
            return compute()
        key = _key(namespace, version, name)

        if raw is not None:
            entry = json.loads(raw)
            if entry["fresh_until"] > time.time() or not self._try_lock(key):
                CACHE_REQUESTS.labels("hit").inc()
                return entry["value"]
            # Soft-expired and we hold the refresh lock: recompute below, others keep serving this.
        elif not self._try_lock(key):
            filled = self._wait_for_fill(key)
            if filled is not None:
                CACHE_REQUESTS.labels("hit").inc()
                return filled
        CACHE_REQUESTS.labels("miss").inc()
        try:
            with self._refill_at(min_lsn) as saw_all:
                value = compute()
        except BaseException:
            self._release(key)  # let the next reader try at once instead of waiting out the lock
            raise
        self._store(key, value, ttl if saw_all() else STALE_TTL)
        return value

    def invalidate(self, namespaces: tuple[str, ...], lsn: int) -> None:
        """Make every cached value of ``namespaces`` unreachable, everywhere; refills must see ``lsn``.

        The client resends this transaction after a dropped connection (app.redis_clients): the
        ``HINCRBY`` is a version bump, not a count, so running it twice still yields a new version
        (and the same ``lsn``), while an invalidation lost to a blip would serve a stale page."""
        try:
            pipe = self.client.pipeline(transaction=True)
            for namespace in namespaces:
                pipe.hincrby(f"ns:{namespace}", "version", 1)
                pipe.hset(f"ns:{namespace}", "lsn", str(lsn))
            pipe.execute()
        except redis.RedisError as exc:
            self.breaker.trip(exc)

    def _read(self, namespace: str, name: str) -> tuple[int, int, bytes | None]:
        version, lsn, raw = self._read_script(keys=[f"ns:{namespace}"], args=[f"c:{namespace}:", name])
        return int(version), int(lsn), raw

    def _release(self, key: str) -> None:
        try:
            self.client.delete(f"lock:{key}")
        except redis.RedisError as exc:
            self.breaker.trip(exc)

    def _try_lock(self, key: str) -> bool:
        try:
            return bool(self.client.set(f"lock:{key}", uuid.uuid4().hex, nx=True, px=LOCK_MS))
        except redis.RedisError as exc:
            self.breaker.trip(exc)
            return True

    def _wait_for_fill(self, key: str) -> Any | None:
        deadline = time.monotonic() + WAIT_FOR_FILL
        try:
            while time.monotonic() < deadline:
                time.sleep(0.02)
                raw = cast("bytes | None", self.client.get(key))  # a sync client
                if raw is not None:
                    return json.loads(raw)["value"]
        except redis.RedisError as exc:
            self.breaker.trip(exc)
        return None

    def _store(self, key: str, value: Any, ttl: float) -> None:
        if not self.breaker.closed:
            return
        soft = jittered(ttl)
        entry = json.dumps({"fresh_until": time.time() + soft, "value": value}, separators=(",", ":"))
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(key, entry, px=int((soft + GRACE) * 1000))
            pipe.delete(f"lock:{key}")
            pipe.execute()
        except redis.RedisError as exc:
            self.breaker.trip(exc)


def init_cache(app: Flask) -> ReadCache:
    cache = ReadCache(app.extensions["cache_redis"], Breaker("cache", BREAKER_SECONDS), reading_at_least)
    app.extensions["cache"] = cache
    return cache


def current_cache() -> ReadCache:
    cache: ReadCache = current_app.extensions["cache"]
    return cache


def cached(namespace: str, name: str, ttl: float, compute: Callable[[], T]) -> T:
    return current_cache().cached(namespace, name, ttl, compute)


def invalidate(*namespaces: str) -> None:
    """After a commit (an after-commit hook): make every cached value of ``namespaces``
    unreachable, everywhere. The new version carries the primary's WAL position, which the
    refill must see."""
    if not namespaces:
        return
    # The commit just recorded the primary's position for read-your-writes: reuse it.
    lsn = committed_position()
    if lsn is None:
        try:
            with db.engine.connect() as conn:
                lsn = primary_lsn(conn)
        except Exception as exc:
            log.warning("no WAL position for cache invalidation (%s); refills read the primary", exc)
            lsn = UNKNOWN_LSN
    current_cache().invalidate(namespaces, lsn)


def invalidate_article(article_id: int) -> None:
    """Everything that shows the article: its page and every listing."""
    invalidate(LISTS, article_namespace(article_id))
